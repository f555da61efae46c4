"""Compiled, strict structuring of message bodies (the codec's hot path).

cattrs is general and careful, but a generic structure hook costs ~15 µs for a
ten-field message with optional fields; a control plane handles several per task.
For the field types messages actually use (str, int, float, bool, bytes, None-able
types, lists, dicts, nested registered messages, Any) this module generates one plain
function per class, checking each field's type without coercing ('5' is not an int).
Any other annotation falls back to the cattrs converter for that field, so every attrs
type still works. Errors name the field as a path, in cattrs' style:
``expected int @ $.items[2].count``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

import attrs
import cattrs

_MISSING = object()


class SchemaError(Exception):
    """A body that does not fit its type: ``path`` says where (``$.field[0]``)."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(f"{message} @ {path}")
        self.reason = message
        self.path = path

    def under(self, prefix: str) -> SchemaError:
        """The same error seen from an enclosing value at ``prefix``."""
        return SchemaError(self.reason, prefix + self.path[1:])


Checker = Callable[[Any, str], Any]


def _kind(value: Any) -> str:
    return type(value).__name__


def _primitive(expected: type) -> Checker:
    name = expected.__name__

    def check(value: Any, path: str) -> Any:
        if type(value) is expected:
            return value
        raise SchemaError(f"got {_kind(value)}, expected {name}", path)

    return check


def _float(value: Any, path: str) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    raise SchemaError(f"got {_kind(value)}, expected float", path)


def _any(value: Any, path: str) -> Any:
    return value


class Compiler:
    """Makes and caches structure functions for attrs classes."""

    def __init__(self, converter: cattrs.Converter, is_message: Callable[[type], bool]):
        self.converter = converter
        self.is_message = is_message
        self._classes: dict[type, Callable[[Any], Any]] = {}
        self._unstructure: dict[type, Callable[[Any], Any]] = {}

    def unstructure_fn(self, cls: type) -> Callable[[Any], Any]:
        """``fn(instance) -> dict`` of plain msgpack data (field names as keys)."""
        fn = self._unstructure.get(cls)
        if fn is None:
            fn = self._compile_unstructure(cls)
            self._unstructure[cls] = fn
        return fn

    def _value_unstructurer(self, annotation: Any) -> Callable[[Any], Any] | None:
        """None when the value is already plain data; else a converting function."""
        if annotation in (str, int, float, bool, bytes, Any, object, type(None)):
            return None
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            options = [a for a in args if a is not type(None)]
            if len(options) == 1 and len(args) == 2:
                maybe = self._value_unstructurer(options[0])
                if maybe is None:
                    return None
                convert = maybe
                return lambda v: None if v is None else convert(v)
        elif origin is list and len(args) == 1:
            inner = self._value_unstructurer(args[0])
            if inner is None:
                return list
            return lambda v: [inner(x) for x in v]
        elif origin is dict and len(args) == 2:
            key = self._value_unstructurer(args[0])
            val = self._value_unstructurer(args[1])
            if key is None and val is None:
                return dict
        elif isinstance(annotation, type) and attrs.has(annotation):
            return lambda v: self.unstructure_fn(type(v))(v)
        hook = self.converter.get_unstructure_hook(annotation)
        return hook

    def _compile_unstructure(self, cls: type) -> Callable[[Any], Any]:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:
            hints = {}
        namespace: dict[str, Any] = {}
        items = []
        for index, field in enumerate(attrs.fields(cls)):
            if not field.init:
                continue
            annotation = hints.get(field.name, field.type if field.type is not None else Any)
            convert = self._value_unstructurer(annotation)
            key = field.alias or field.name
            if convert is None:
                items.append(f"{key!r}: o.{field.name}")
            else:
                namespace[f"_u{index}"] = convert
                items.append(f"{key!r}: _u{index}(o.{field.name})")
        source = "def unstructure(o):\n    return {" + ", ".join(items) + "}"
        exec(compile(source, f"<actors unstructure {cls.__qualname__}>", "exec"), namespace)
        return namespace["unstructure"]

    def structure_fn(self, cls: type) -> Callable[[Any], Any]:
        """``fn(body) -> instance``; raises SchemaError."""
        fn = self._classes.get(cls)
        if fn is None:
            fn = self._compile(cls)
            self._classes[cls] = fn
        return fn

    # -- checkers for annotations ------------------------------------------------------
    def checker(self, annotation: Any) -> Checker:
        """A function checking (and, for nested types, building) one value."""
        if annotation is Any or annotation is object:
            return _any
        if annotation in (str, int, bool, bytes):
            return _primitive(annotation)
        if annotation is float:
            return _float
        if annotation is type(None):
            return _primitive(type(None))
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            options = [a for a in args if a is not type(None)]
            if len(options) == 1 and len(args) == 2:
                inner = self.checker(options[0])

                def optional(value: Any, path: str) -> Any:
                    return None if value is None else inner(value, path)

                return optional
        elif origin is list and len(args) == 1:
            item = self.checker(args[0])
            if item is _any:
                return _list_any
            return _list_of(item)
        elif origin is dict and len(args) == 2:
            return _dict_of(self.checker(args[0]), self.checker(args[1]))
        elif isinstance(annotation, type) and attrs.has(annotation):
            return self._nested(annotation)
        return self._fallback(annotation)

    def _nested(self, cls: type) -> Checker:
        def nested(value: Any, path: str) -> Any:
            try:
                return self.structure_fn(cls)(value)
            except SchemaError as exc:
                raise exc.under(path) from None

        return nested

    def _fallback(self, annotation: Any) -> Checker:
        hook = self.converter.get_structure_hook(annotation)

        def fallback(value: Any, path: str) -> Any:
            try:
                return hook(value, annotation)
            except Exception as exc:
                if isinstance(exc, cattrs.BaseValidationError):
                    text = "; ".join(cattrs.transform_error(exc, path=path))
                    raise SchemaError(text, path) from None
                raise SchemaError(f"{type(exc).__name__}: {exc}", path) from None

        return fallback

    # -- classes -------------------------------------------------------------------------
    def _compile(self, cls: type) -> Callable[[Any], Any]:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:
            hints = {}
        namespace: dict[str, Any] = {
            "_cls": cls,
            "_M": _MISSING,
            "_Err": SchemaError,
            "_kind": _kind,
        }
        lines = [
            "def structure(body):",
            "    if type(body) is not dict:",
            "        raise _Err('got ' + _kind(body) + ', expected a map of fields for "
            f"{cls.__qualname__}', '$')",
        ]
        names = []
        for index, field in enumerate(attrs.fields(cls)):
            if not field.init:
                continue
            var = f"v{index}"
            key = field.alias or field.name
            path = f"$.{field.name}"
            annotation = hints.get(field.name, field.type if field.type is not None else Any)
            lines.append(f"    {var} = body.get({key!r}, _M)")
            default = field.default
            if default is attrs.NOTHING:
                lines.append(f"    if {var} is _M:")
                lines.append(f"        raise _Err('required field missing', {path!r})")
            else:
                namespace[f"_d{index}"] = default
                lines.append(f"    if {var} is _M:")
                if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                    if default.takes_self:
                        raise TypeError("Factory(takes_self=True) is not supported in messages")
                    lines.append(f"        {var} = _d{index}.factory()")
                else:
                    lines.append(f"        {var} = _d{index}")
                lines.append("    else:")
                lines.extend(
                    "    " + line
                    for line in self._check_lines(var, annotation, path, index, namespace)
                )
                names.append(f"{field.name}={var}" if field.kw_only else var)
                continue
            lines.extend(self._check_lines(var, annotation, path, index, namespace))
            names.append(f"{field.name}={var}" if field.kw_only else var)
        lines.append(f"    return _cls({', '.join(names)})")
        source = "\n".join(lines)
        exec(compile(source, f"<actors structure {cls.__qualname__}>", "exec"), namespace)
        return namespace["structure"]

    def _check_lines(
        self, var: str, annotation: Any, path: str, index: int, namespace: dict[str, Any]
    ) -> list[str]:
        """Inline checks for the common scalar types; a checker call otherwise."""
        simple = {str: "str", int: "int", bool: "bool", bytes: "bytes"}
        optional = False
        inner = annotation
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
            optional = True
            inner = args[0] if args[1] is type(None) else args[1]
        pad = "    "
        out: list[str] = []
        if optional:
            out.append(f"{pad}if {var} is not None:")
            pad += "    "
        if inner in simple:
            name = simple[inner]
            out.append(f"{pad}if type({var}) is not {name}:")
            out.append(
                f"{pad}    raise _Err('got ' + _kind({var}) + ', expected {name}', {path!r})"
            )
        elif inner is float:
            out.append(f"{pad}if type({var}) is not float:")
            out.append(f"{pad}    if type({var}) is int:")
            out.append(f"{pad}        {var} = float({var})")
            out.append(f"{pad}    else:")
            out.append(
                f"{pad}        raise _Err('got ' + _kind({var}) + ', expected float', {path!r})"
            )
        elif inner is Any or inner is object:
            out.append(f"{pad}pass")
        else:
            namespace[f"_c{index}"] = self.checker(inner)
            out.append(f"{pad}{var} = _c{index}({var}, {path!r})")
        return out


def _list_any(value: Any, path: str) -> Any:
    if type(value) is not list:
        raise SchemaError(f"got {_kind(value)}, expected list", path)
    return value


def _list_of(item: Checker) -> Checker:
    def check(value: Any, path: str) -> Any:
        if type(value) is not list:
            raise SchemaError(f"got {_kind(value)}, expected list", path)
        try:
            return [item(x, path) for x in value]
        except SchemaError:
            # Slow path, only on error: find the item again, with its index in the path.
            for i, x in enumerate(value):
                item(x, f"{path}[{i}]")
            raise

    return check


def _dict_of(key: Checker, val: Checker) -> Checker:
    def check(value: Any, path: str) -> Any:
        if type(value) is not dict:
            raise SchemaError(f"got {_kind(value)}, expected map", path)
        try:
            return {key(k, path): val(v, path) for k, v in value.items()}
        except SchemaError:
            for k, v in value.items():
                key(k, f"{path} (key {k!r})")
                val(v, f"{path}[{k!r}]")
            raise

    return check
