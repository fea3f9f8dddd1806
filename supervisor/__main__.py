from .cli.superd import main

main()
