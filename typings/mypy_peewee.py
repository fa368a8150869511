"""mypy plugin: the model attributes peewee's metaclass creates, which no stub can declare.

peewee (its wheels ship typeshed's stubs as ``peewee-stubs`` since 4.4) types the declared fields
generically: ``User.email`` is a ``CharField[str]`` on the class (a query expression) and a ``str``
on an instance. What it cannot see are the attributes ``ModelBase`` adds when the class is
created; this plugin declares them once, for every model:

- ``id``: the ``AutoField`` peewee adds to a model that declares no primary key (its own field
  with ``primary_key=True``, an ``AutoField``, ``Meta.primary_key``, or one inherited);
- ``<fk>_id``: the object-id accessor of each ``ForeignKeyField`` (its ``object_id_name``,
  else its ``column_name``, else ``<name>_id``), a ``Field[int]`` (``int | None`` when
  ``null=True``; ``Any`` when the target's key is not the implicit ``id``);
- ``DoesNotExist``: the per-model subclass of ``peewee.DoesNotExist``.

Two corrections to the stub: ``.dicts()``, ``.tuples()``, ``.namedtuples()`` and
``.objects()`` return the same query class (``Self``), so a ``ModelSelect[Course]`` would still
iterate ``Course`` rows after ``.tuples()``; the plugin makes it a ``ModelSelect[Any]`` (rows
of unknown shape, still chainable); ``Select.for_update`` takes a lock clause too
(``for_update("FOR SHARE")``, as peewee documents), where the stub says ``bool``.

Backrefs (``backref="modules"``) are left out: they add an attribute to *another* class, which
mypy's incremental cache cannot track from a class hook; read them through a query instead.

Enabled in mypy.ini (``plugins = pydantic.mypy, typings/mypy_peewee.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import (
    AssignmentStmt,
    CallExpr,
    ClassDef,
    NameExpr,
    RefExpr,
    StrExpr,
    TypeInfo,
)
from mypy.plugin import ClassDefContext, MethodContext, MethodSigContext, Plugin
from mypy.plugins.common import add_attribute_to_class
from mypy.types import (
    AnyType,
    FunctionLike,
    Instance,
    NoneType,
    Type,
    TypeOfAny,
    TypeType,
    UnionType,
    get_proper_type,
)

MODEL = "peewee.Model"
KEY = "learnplat.mypy_peewee"  # TypeInfo.metadata key: {"implicit_id": bool}
ROW_SHAPERS = {"dicts", "tuples", "namedtuples", "objects"}  # query methods that change the rows
AUTO_FIELDS = {"peewee.AutoField", "peewee.BigAutoField", "peewee.IdentityField",
               "peewee.PrimaryKeyField"}


def _field_class(call: CallExpr) -> TypeInfo | None:
    """The peewee Field subclass a class-body call constructs, else None."""
    callee = call.callee
    if isinstance(callee, RefExpr) and isinstance(callee.node, TypeInfo):
        if callee.node.has_base("peewee.Field"):
            return callee.node
    return None


def _kwarg(call: CallExpr, name: str) -> object:
    for arg_name, arg in zip(call.arg_names, call.args, strict=True):
        if arg_name == name:
            return arg
    return None


def _is_true(expr: object) -> bool:
    return isinstance(expr, NameExpr) and expr.fullname == "builtins.True"


def _fields(cls: ClassDef) -> list[tuple[str, CallExpr, TypeInfo]]:
    out = []
    for stmt in cls.defs.body:
        if (isinstance(stmt, AssignmentStmt) and len(stmt.lvalues) == 1
                and isinstance(stmt.lvalues[0], NameExpr) and isinstance(stmt.rvalue, CallExpr)):
            field = _field_class(stmt.rvalue)
            if field is not None:
                out.append((stmt.lvalues[0].name, stmt.rvalue, field))
    return out


def _meta_sets_primary_key(cls: ClassDef) -> bool:
    for stmt in cls.defs.body:
        if isinstance(stmt, ClassDef) and stmt.name == "Meta":
            for inner in stmt.defs.body:
                if isinstance(inner, AssignmentStmt) and any(
                        isinstance(lv, NameExpr) and lv.name == "primary_key"
                        for lv in inner.lvalues):
                    return True
    return False


def _implicit_id(info: TypeInfo) -> bool:
    """Whether the model's primary key is peewee's implicit `id` (inherited like peewee does)."""
    for base in info.mro[1:]:
        data = base.metadata.get(KEY)
        if data is not None:
            return bool(data["implicit_id"])
    return True


def _add_model_attributes(ctx: ClassDefContext) -> None:
    cls, info, api = ctx.cls, ctx.cls.info, ctx.api
    if KEY in info.metadata:  # the hook runs once per model base (multiple inheritance): once
        return
    fields = _fields(cls)
    own_pk = _meta_sets_primary_key(cls) or any(
        field.fullname in AUTO_FIELDS or _is_true(_kwarg(call, "primary_key"))
        for _, call, field in fields)
    implicit_id = not own_pk and _implicit_id(info)
    info.metadata[KEY] = {"implicit_id": implicit_id}

    int_type = api.named_type("builtins.int")
    if implicit_id and "id" not in info.names:
        add_attribute_to_class(api, cls, "id", api.named_type("peewee.AutoField", [int_type]))
    if "DoesNotExist" not in info.names:
        add_attribute_to_class(api, cls, "DoesNotExist",
                               TypeType(api.named_type("peewee.DoesNotExist")), is_classvar=True)

    for name, call, field in fields:
        if not field.has_base("peewee.ForeignKeyField"):
            continue
        id_name = _str_kwarg(call, "object_id_name") or _str_kwarg(call, "column_name") or (
            name if name.endswith("_id") else name + "_id")
        if id_name == name:
            id_name += "_id"
        if id_name in info.names:
            continue
        value: Type = AnyType(TypeOfAny.special_form)
        target = call.args[0] if call.args and call.arg_names[0] is None else _kwarg(call, "model")
        if (isinstance(target, RefExpr) and isinstance(target.node, TypeInfo)
                and target.node.has_base(MODEL) and _target_implicit_id(target.node)):
            value = int_type
            if _is_true(_kwarg(call, "null")):
                value = UnionType([int_type, NoneType()])
        add_attribute_to_class(api, cls, id_name, api.named_type("peewee.Field", [value]))


def _str_kwarg(call: CallExpr, name: str) -> str | None:
    arg = _kwarg(call, name)
    return arg.value if isinstance(arg, StrExpr) else None


def _target_implicit_id(target: TypeInfo) -> bool:
    data = target.metadata.get(KEY)
    if data is not None:
        return bool(data["implicit_id"])
    return False  # not processed yet (defined later, or in a cycle): say Any rather than guess


def _rows_of_any_shape(ctx: MethodContext) -> Type:
    ret = get_proper_type(ctx.default_return_type)
    if isinstance(ret, Instance) and ret.args and ret.type.has_base("peewee.BaseModelSelect"):
        return ret.copy_modified(args=[AnyType(TypeOfAny.special_form)] * len(ret.args))
    return ctx.default_return_type


def _for_update_takes_a_clause(ctx: MethodSigContext) -> FunctionLike:
    sig = ctx.default_signature
    receiver = get_proper_type(ctx.type)
    if (isinstance(receiver, Instance) and receiver.type.has_base("peewee.Select")
            and sig.arg_names[:1] == ["for_update"]):
        lock = UnionType([sig.arg_types[0], ctx.api.named_generic_type("builtins.str", [])])
        return sig.copy_modified(arg_types=[lock, *sig.arg_types[1:]])
    return sig


class PeeweePlugin(Plugin):
    def get_method_signature_hook(
            self, fullname: str) -> Callable[[MethodSigContext], FunctionLike] | None:
        return _for_update_takes_a_clause if fullname.endswith(".for_update") else None

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        # fullname is the receiver's class + method (peewee.ModelSelect.tuples): match the method,
        # the hook then acts on model queries only.
        return _rows_of_any_shape if fullname.rpartition(".")[2] in ROW_SHAPERS else None

    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        # Called with each class's direct bases only: answer for every model class, not just Model.
        sym = self.lookup_fully_qualified(fullname)
        if sym is not None and isinstance(sym.node, TypeInfo) and (
                sym.node.fullname == MODEL or sym.node.has_base(MODEL)):
            return _add_model_attributes
        return None


def plugin(version: str) -> type[Plugin]:
    return PeeweePlugin
