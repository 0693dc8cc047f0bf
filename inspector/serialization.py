"""The wire JSON (camelCase) to and from the attrs models: the one cattrs converter, at the edge.

The models in :mod:`inspector.models` know nothing of the wire: no aliases, no validators. All of
it lives here, where the server's data enters the program, so that a model is checked once, on
the way in, and code further in can trust it. The converter is private; the module offers four
functions: :func:`from_wire` / :func:`to_wire` (decoded JSON objects) and :func:`from_json` /
:func:`to_json` (text).

Names. A hook *factory* registered for every attrs class derives each wire name from the
attribute name (``widget_container_ids`` -> ``widgetContainerIds``), so a field added to a model
needs nothing here.

Unknown fields. A server may add fields anywhere, and a compliance tool must not drop data it was
given. Each model with an ``extra`` attribute receives the wire keys its class does not name,
values as sent. They travel through the generated cattrs function without touching a frozen
instance: the class hook collects them and hands them over under a private key (``_EXTRA_KEY``)
that the ``extra`` attribute is renamed to; on the way out that key is popped and its contents
merged back into the object at top level. Nested objects (a data source, a position) keep theirs
the same way, each in its own ``extra``.

Round-trip rule, exact both ways:

* ``to_wire`` writes every field of a model except one whose value is ``None``; sequences are
  always written, as JSON arrays (``[]`` when empty); then the extras. A named field wins over
  an extra of the same wire name (only a hand-built model can have one).
* Hence ``from_json(to_json(m), type(m)) == m`` for every model ``m``, and
  ``to_wire(from_wire(d, cls)) == d`` for every wire object ``d`` in canonical form: no ``null``
  for a named field, every sequence field present (as an array). Anything else still structures,
  but comes back canonical: a ``null`` or absent optional field is left out, an absent sequence
  is written as ``[]``, and an older server's single ``widgetId`` comes back as ``widgetIds``.
* Extras are not copied either way: a model shares their values with the dict it came from, and
  ``to_wire`` output shares them with the model. Copy before mutating either.

Strict shapes. cattrs by default calls ``str(value)``, which turns a list into ``"['a']"``; here a
``str`` field takes only a string, an ``int`` only an integer (not a bool), a ``float`` an
integer or a float, returned unchanged (``fontSize: 12`` stays ``12``), and a sequence only a JSON
array. A wrong shape raises :class:`~inspector.exceptions.ProtocolError`.

Speed. ``from_wire`` runs once per widget, tens of thousands of times per large inspection, so the
normal case uses hooks generated *without* cattrs' detailed validation, fetched once per class.
Only when one fails is the same data structured again by a second, detailed converter, whose
error tree is turned into a message naming the method, the object id and the wire field path.

Threads. All four functions may be called from any number of threads at once. The models' fast
hooks are generated at import and afterwards only read; a hook made later (a detailed one, on the
first error; one for a type that is not a model) is made under a lock, and no hook keeps state.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
)

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from inspector.display import printable
from inspector.exceptions import InvalidArgument, ProtocolError
from inspector.models import DataSource, Document, Inspection, Position, Widget, WidgetContainer
from inspector.protocol import NonFiniteNumber, decode_json

__all__ = ["from_json", "from_wire", "to_json", "to_wire"]

T = TypeVar("T")

StructureHook = Callable[[Any, Any], Any]

# The key under which a class hook hands the extras to the generated function. No JSON text can
# collide with it in a harmful way: a wire key spelled like this is itself unknown, so it is
# carried in the extras and written back like any other.
_EXTRA_KEY = "\x00extra"
_EXTRA_ATTRIBUTE = "extra"

# Older servers send one "widgetId" where newer ones send the list "widgetIds".
_LEGACY_SINGLE_KEYS: Dict[type, Tuple[str, str]] = {WidgetContainer: ("widgetId", "widgetIds")}

_MODELS: Tuple[type, ...] = (DataSource, Position, Document, WidgetContainer, Widget, Inspection)

if sys.version_info >= (3, 10):
    import types

    _UNION_ORIGINS: Tuple[Any, ...] = (Union, types.UnionType)
else:  # pragma: no cover - Python 3.9
    _UNION_ORIGINS = (Union,)


class _WrongShape(TypeError):
    """A wire value of the wrong JSON type; ``field`` is set when no cattrs note names it."""

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field


def _camel(name: str) -> str:
    """``widget_container_ids`` -> ``widgetContainerIds``."""
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _attribute_wire_names(cls: Any) -> Dict[str, str]:
    """Attribute name -> wire name, for the attributes the wire carries (all but ``extra``)."""
    fields = attrs.fields(cls) if attrs.has(cls) else ()
    return {field.name: _camel(field.name) for field in fields if field.name != _EXTRA_ATTRIBUTE}


def _overrides(cls: Any) -> Dict[str, Any]:
    """The cattrs overrides of a model: wire names, and ``extra`` under the private key as is."""
    # Any, not AttributeOverride: the generators' other keywords are bools, and mypy checks a
    # ** dict against all of them.
    overrides: Dict[str, Any] = {
        name: override(rename=wire_name) for name, wire_name in _attribute_wire_names(cls).items()
    }
    if _EXTRA_ATTRIBUTE in attrs.fields_dict(cls):
        overrides[_EXTRA_ATTRIBUTE] = override(
            rename=_EXTRA_KEY, struct_hook=_identity, unstruct_hook=_identity
        )
    return overrides


def _json_type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _type_name(cls: Any) -> str:
    return cls.__name__ if isinstance(cls, type) else repr(cls)


def _identity(value: Any, _type: Any = None) -> Any:
    return value


# Strict scalar hooks. Exact type checks, not isinstance: bool is a subclass of int, and JSON
# gives only the exact builtin types anyway.


def _structure_str(value: Any, _type: Any) -> str:
    if type(value) is str:
        return value
    raise _WrongShape(f"expected a string, got {_json_type(value)}")


def _structure_int(value: Any, _type: Any) -> int:
    if type(value) is int:
        return value
    raise _WrongShape(f"expected an integer, got {_json_type(value)}")


def _structure_float(value: Any, _type: Any) -> float:
    # Returned unchanged, not float(value): a font size sent as 12 must go back out as 12.
    if type(value) is int or (type(value) is float and value - value == 0.0):
        return cast(float, value)
    if type(value) is float:
        # inf - inf and nan - nan are nan: neither is JSON, so neither may get into a model
        # that to_json() would then have to write.
        raise _WrongShape(f"expected a finite number, got {value}")
    raise _WrongShape(f"expected a number, got {_json_type(value)}")


def _structure_bool(value: Any, _type: Any) -> bool:
    if type(value) is bool:
        return value
    raise _WrongShape(f"expected a boolean, got {_json_type(value)}")


# The exact JSON types each scalar field accepts (the strict hooks above, as sets).
_SCALAR_TYPES: Dict[Any, FrozenSet[type]] = {
    str: frozenset({str}),
    int: frozenset({int}),
    float: frozenset({int, float}),
    bool: frozenset({bool}),
}


def _require_array(value: Any) -> None:
    # Only a JSON array: cattrs would iterate a string into characters, a dict into its keys.
    if type(value) is not list and type(value) is not tuple:
        raise _WrongShape(f"expected a list, got {_json_type(value)}")


def _is_optional(type_: Any) -> bool:
    args = get_args(type_)
    return get_origin(type_) in _UNION_ORIGINS and len(args) == 2 and type(None) in args


def _is_homogeneous_tuple(type_: Any) -> bool:
    args = get_args(type_)
    return get_origin(type_) is tuple and len(args) == 2 and args[1] is Ellipsis


def _install_hooks(converter: cattrs.Converter) -> None:
    """Register the strict scalar hooks and the factories for Optional, tuples and models."""
    detailed = converter.detailed_validation
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)

    def optional_factory(type_: Any) -> StructureHook:
        # cattrs' own Optional hook looks the inner hook up on every call; fetch it once.
        inner_type = next(arg for arg in get_args(type_) if arg is not type(None))
        inner = converter.get_structure_hook(inner_type)
        accepted = _SCALAR_TYPES.get(inner_type)

        def structure_optional(value: Any, _type: Any) -> Any:
            return None if value is None else inner(value, inner_type)

        if accepted is None or detailed:
            return structure_optional

        def structure_optional_scalar(value: Any, _type: Any) -> Any:
            # The common case in one call: most optional fields are strings or numbers.
            if value is None or type(value) in accepted:
                return value
            return inner(value, inner_type)  # raises the right message

        def structure_optional_float(value: Any, _type: Any) -> Any:
            # The same, but a float must also be finite: the strict hook checks that.
            if value is None or type(value) is int:
                return value
            return inner(value, inner_type)

        return structure_optional_float if inner_type is float else structure_optional_scalar

    def tuple_factory(type_: Any) -> StructureHook:
        element_type = get_args(type_)[0]
        element = converter.get_structure_hook(element_type)

        def structure_tuple(value: Any, _type: Any) -> Tuple[Any, ...]:
            _require_array(value)
            return tuple([element(item, element_type) for item in value])

        accepted = _SCALAR_TYPES.get(element_type)

        def structure_scalar_tuple(value: Any, _type: Any) -> Tuple[Any, ...]:
            # A list of strings (a palette) checked with one C-level pass, not a call per item.
            if type(value) is list and set(map(type, value)) <= accepted:  # type: ignore[operator]
                return tuple(value)
            return structure_tuple(value, _type)  # raises the right message

        def structure_tuple_detailed(value: Any, _type: Any) -> Tuple[Any, ...]:
            # The same, noting the index of each failing element, as cattrs' own hooks do.
            _require_array(value)
            items: List[Any] = []
            errors: List[Exception] = []
            for index, item in enumerate(value):
                try:
                    items.append(element(item, element_type))
                except Exception as exc:
                    note = IterableValidationNote(f"@ index {index}", index, element_type)
                    exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                    errors.append(exc)
            if errors:
                raise IterableValidationError(f"While structuring {type_!r}", errors, type_)
            return tuple(items)

        if detailed:
            return structure_tuple_detailed
        return structure_tuple if accepted is None else structure_scalar_tuple

    def model_structure_factory(cls: Any) -> StructureHook:
        overrides = _overrides(cls)
        generated = make_dict_structure_fn(
            cls, converter, _cattrs_detailed_validation=detailed, **overrides
        )
        has_extra = _EXTRA_ATTRIBUTE in overrides
        known: FrozenSet[str] = frozenset(_attribute_wire_names(cls).values())
        legacy = _LEGACY_SINGLE_KEYS.get(cls)

        def structure_model(data: Any, _type: Any) -> Any:
            if not isinstance(data, dict):
                raise _WrongShape(f"expected an object, got {_json_type(data)}")
            if legacy is not None and legacy[0] in data and legacy[1] not in data:
                data = _from_legacy(data, *legacy)
            if not has_extra:
                return generated(data)
            # The common case, no unknown key, costs one C-level set comparison and no copy:
            # the generated function then gives ``extra`` its default, a new empty dict.
            if data.keys() <= known:
                return generated(data)
            extra = {key: value for key, value in data.items() if key not in known}
            return generated({**data, _EXTRA_KEY: extra})

        return structure_model

    def model_unstructure_factory(cls: Any) -> Callable[[Any], Any]:
        generated = make_dict_unstructure_fn(cls, converter, **_overrides(cls))

        def unstructure_model(obj: Any) -> Dict[str, Any]:
            generated_wire: Dict[str, Any] = generated(obj)
            extra = generated_wire.pop(_EXTRA_KEY, None)
            # None is never written (the round-trip rule). Filtered here rather than with
            # cattrs' omit_if_default, which would move those fields to the end of the object.
            wire = {key: value for key, value in generated_wire.items() if value is not None}
            if extra:
                for key, value in extra.items():
                    wire.setdefault(key, value)
            return wire

        return unstructure_model

    converter.register_structure_hook_factory(_is_optional, optional_factory)
    converter.register_structure_hook_factory(_is_homogeneous_tuple, tuple_factory)
    converter.register_structure_hook_factory(attrs.has, model_structure_factory)
    converter.register_unstructure_hook_factory(attrs.has, model_unstructure_factory)


def _from_legacy(data: Dict[str, Any], single_key: str, list_key: str) -> Dict[str, Any]:
    """An older server's ``{"widgetId": "x"}`` as ``{"widgetIds": ["x"]}``, the key dropped."""
    value = data[single_key]
    if type(value) is not str:
        # Named here: once moved into the list the error would blame "widgetIds[0]" instead.
        raise _WrongShape(f"expected a string, got {_json_type(value)}", field=single_key)
    rewritten = {key: item for key, item in data.items() if key != single_key}
    rewritten[list_key] = [value]
    return rewritten


def _make_converter(detailed: bool) -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=detailed)
    _install_hooks(converter)
    return converter


# The fast converter serves every call; the detailed one only explains a failure.
_converter = _make_converter(detailed=False)
_detailed_converter = _make_converter(detailed=True)

# The fast hooks of every model are made at import, so that a normal call only reads this dict.
_structure_hooks: Dict[Any, StructureHook] = {
    cls: _converter.get_structure_hook(cls) for cls in _MODELS
}
# The detailed ones only when a first error needs explaining, which a healthy run never does.
_detailed_hooks: Dict[Any, StructureHook] = {}
_wire_names: Dict[Any, Dict[str, str]] = {cls: _attribute_wire_names(cls) for cls in _MODELS}
for _cls in _MODELS:
    _converter.get_unstructure_hook(_cls)
# Any hook not made at import is made on first use, under this lock: cattrs does not promise
# that generating hooks in two threads at once is safe. Readers of the dicts never take it.
_hook_lock = threading.Lock()


def _hook(hooks: Dict[Any, StructureHook], converter: cattrs.Converter, cls: Any) -> StructureHook:
    try:
        return hooks[cls]
    except KeyError:
        with _hook_lock:
            return hooks.setdefault(cls, converter.get_structure_hook(cls))


def from_wire(data: Any, cls: Type[T], *, method: Optional[str] = None, **fields: Any) -> T:
    """Structure a decoded wire object (a dict with camelCase keys) into ``cls``.

    Args:
        data: The decoded JSON object, e.g. a reply's ``result``.
        cls: The model class to build (or any type the converter knows, e.g.
            ``Tuple[Widget, ...]``).
        method: The request method the object answers; named in an error message.
        **fields: Model attributes that are not on the wire, by attribute name (e.g.
            ``container_id="doc-1/c1"`` for a :class:`~inspector.models.Widget`). They win over
            the wire and are checked like it.

    Returns:
        The model instance.

    Raises:
        ProtocolError: ``data`` has the wrong shape: not an object, a required field missing, a
            value of the wrong JSON type. The message names the method, the object id and the
            field by its wire path (``dataSources[0].kind``); the cattrs error is the cause.
        TypeError: ``fields`` names an attribute that ``cls`` does not have.
    """
    hook = _hook(_structure_hooks, _converter, cls)
    if fields and isinstance(data, dict):
        data = {**data, **_wire_fields(cls, fields)}
    try:
        return cast(T, hook(data, cls))
    except Exception as fast_exc:
        cause, message = _explain(data, cls, fast_exc)
        raise ProtocolError(f"{_subject(data, cls, method)}: {message}") from cause


def _wire_fields(cls: Any, fields: Mapping[str, Any]) -> Dict[str, Any]:
    """``fields`` under their wire names, so that they are checked and structured like the wire."""
    names = _wire_names.get(cls) or _attribute_wire_names(cls)
    try:
        return {names[name]: value for name, value in fields.items()}
    except KeyError as exc:
        raise TypeError(f"{_type_name(cls)} has no field {exc.args[0]!r}") from None


def _subject(data: Any, cls: Any, method: Optional[str]) -> str:
    subject = method if method else _type_name(cls)
    object_id = data.get("id") if isinstance(data, dict) else None
    if isinstance(object_id, str):
        return f"{subject} {printable(object_id, quote=True)}"
    return subject


def _explain(data: Any, cls: Any, fast_exc: Exception) -> Tuple[BaseException, str]:
    """Structure ``data`` again with detailed validation; the error and a message naming it."""
    try:
        _hook(_detailed_hooks, _detailed_converter, cls)(data, cls)
    except Exception as detailed_exc:
        problems = list(_problems(detailed_exc, ""))
        path, message = problems[0]
        if path:
            message = f"field {path!r}: {message}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more)"
        return detailed_exc, message
    # Both converters share every hook, so this means a bug here, not in the data.
    return fast_exc, f"{type(fast_exc).__name__}: {fast_exc}"


def _problems(exc: BaseException, path: str) -> Iterator[Tuple[str, str]]:
    """Walk a detailed cattrs error tree: (wire path, description) per failed leaf."""
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        for sub_exc in exc.exceptions:
            sub_path = path
            for note in getattr(sub_exc, "__notes__", ()):
                if isinstance(exc, ClassValidationError) and isinstance(
                    note, AttributeValidationNote
                ):
                    name = _camel(note.name)
                    sub_path = f"{path}.{name}" if path else name
                elif isinstance(exc, IterableValidationError) and isinstance(
                    note, IterableValidationNote
                ):
                    sub_path = f"{path}[{note.index}]"
            yield from _problems(sub_exc, sub_path)
    elif isinstance(exc, _WrongShape):
        if exc.field:
            path = f"{path}.{exc.field}" if path else exc.field
        yield path, str(exc)
    elif isinstance(exc, KeyError):
        # A generated function reads each required field as data[wire_name].
        yield path, "required field missing"
    else:
        yield path, f"invalid value ({type(exc).__name__}: {exc})"


def to_wire(obj: Any) -> Any:
    """The wire form of a model, or of a list or tuple of models.

    Args:
        obj: A model instance (or a list/tuple/dict of them).

    Returns:
        Plain JSON-able data: dicts with camelCase keys and each model's extras merged back in at
        its own level, lists for sequences; ``None`` fields left out.
    """
    return _converter.unstructure(obj)


def to_json(obj: Any, *, indent: Optional[int] = None) -> str:
    """The JSON text of a model, or of a list or tuple of models.

    Args:
        obj: What :func:`to_wire` accepts.
        indent: Passed to :func:`json.dumps`; ``None`` for one line.

    Returns:
        ``json.dumps(to_wire(obj))``, non-ASCII characters escaped. Always valid JSON.

    Raises:
        InvalidArgument: ``obj`` holds NaN or an infinity, which JSON cannot represent (a model
            built from the wire never does: such numbers are refused on the way in).
    """
    try:
        return json.dumps(to_wire(obj), indent=indent, allow_nan=False)
    except ValueError as exc:
        raise InvalidArgument(
            f"to_json: obj holds NaN or an infinity, which JSON cannot represent ({exc})"
        ) from None


def from_json(text: str, cls: Type[T]) -> T:
    """Parse JSON text into ``cls``: :func:`json.loads`, then :func:`from_wire`.

    Args:
        text: The JSON text (``bytes`` in UTF-8, -16 or -32 are accepted too).
        cls: The model class to build.

    Returns:
        The model instance.

    Raises:
        ProtocolError: The text is not valid JSON (NaN, Infinity and numbers beyond a float's
            range, such as ``1e400``, are not), or its shape does not fit ``cls``.
    """
    try:
        if isinstance(text, (bytes, bytearray)):
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        data = decode_json(text)
    except NonFiniteNumber as exc:
        raise ProtocolError(f"{_type_name(cls)}: invalid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and undecodable bytes; absurd nesting, RecursionError.
        raise ProtocolError(f"{_type_name(cls)}: invalid JSON: {exc}") from exc
    return from_wire(data, cls)
