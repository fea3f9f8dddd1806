"""XML-RPC's own ``system.*`` methods (listMethods, methodHelp, methodSignature,
multicall), a part of :class:`~supervisor.http.rpcinterface.RpcInterface`."""

from __future__ import annotations

import inspect

from .rpcbase import rpc
from .xmlrpc import INCORRECT_PARAMETERS, SIGNATURE_UNSUPPORTED, RPCError


class SystemMethods:
    """Needs ``methods`` (name -> bound method) and ``call`` of the interface."""


    @rpc("array")
    async def system_listMethods(self) -> list:
        """Every method's name."""
        return sorted(self.methods)

    @rpc("string", "string")
    async def system_methodHelp(self, name) -> str:
        """A method's documentation."""
        fn = self.methods.get(name) if isinstance(name, str) else None
        if fn is None:
            raise RPCError(SIGNATURE_UNSUPPORTED)
        return inspect.getdoc(fn) or ""

    @rpc("array", "string")
    async def system_methodSignature(self, name) -> list:
        """A method's signature: [return type, parameter types...]."""
        fn = self.methods.get(name) if isinstance(name, str) else None
        if fn is None:
            raise RPCError(SIGNATURE_UNSUPPORTED)
        return list(fn.rpc_signature)

    @rpc("array", "array")
    async def system_multicall(self, calls, after: list) -> list:
        """Make many calls in one request: each answer in order, a fault as {faultCode, faultString}."""
        if not isinstance(calls, list):
            raise RPCError(INCORRECT_PARAMETERS)
        results = []
        for call in calls:
            try:
                if not isinstance(call, dict) or not isinstance(call.get("methodName"), str):
                    raise RPCError(INCORRECT_PARAMETERS, "No methodName")
                name, params = call["methodName"], call.get("params", [])
                if name == "system.multicall":
                    raise RPCError(INCORRECT_PARAMETERS, "Recursive system.multicall forbidden")
                if not isinstance(params, list):
                    raise RPCError(INCORRECT_PARAMETERS)
                results.append(await self.call(name, tuple(params), after))
            except RPCError as exc:
                results.append({"faultCode": exc.code, "faultString": exc.text})
        return results
