"""An optimizer chosen when a kernel is compiled, not while it runs: kernels that train take a StepChoice.

optimizer_step(opt_id, ...) branches over the whole optimizer table at run time, so every kernel that
calls it compiles all fifteen step kernels: 10 s of the 17 s that train_chunk took to compile from an empty
cache on the 2-core machine. A StepChoice is a plain Python object whose numba type names one step kernel;
numba compiles (and caches) a kernel that takes one once per step kernel it is called with, and
`chosen_step` inside it is that one kernel's update. An Adam run compiles Adam's (train_chunk: 9 s cold),
each further optimizer of the same process ~1.7 s more; from numba's cache each is a load of ~20 ms.
Passing the step kernel itself as the argument would be shorter, but numba lowers a function value as a
pointer to a Python object and will not cache a kernel holding one.

A process that trains many optimizers compiles faster with the whole table once (train_chunk 17 s, each
kernel ~0.6 s of it) than with each alone (~1.7 s each, ~6 s with the column split's two kernels):
step_choice(opt_id, table=True) is a choice of type "StepChoice(table)", whose value carries the row and
whose `chosen_step` is optimizer_step's run-time dispatch. Both run the same step kernel's code.
"""

from __future__ import annotations

from functools import cache

from llvmlite import ir
from numba import types
from numba.extending import NativeValue, intrinsic, models, overload, register_model, typeof_impl, unbox

from tuilab.kernels import optimizers as O

_KERNEL_BY_NAME = {k.__name__: k for k in O.STEP_KERNELS}


TABLE = "table"  # a StepChoice's name when it dispatches over the whole table at run time


class StepChoice:
    """Which step kernel (a row of kernels.optimizers.STEP_KERNELS) a training kernel is compiled for, or
    (table) a row picked at run time from a kernel compiled for them all."""

    __slots__ = ("opt_id", "name")

    def __init__(self, opt_id: int, table: bool = False):
        if not 0 <= opt_id < len(O.STEP_KERNELS):
            raise ValueError(f"no step kernel has id {opt_id}")
        self.opt_id = opt_id
        self.name = TABLE if table else O.STEP_KERNELS[opt_id].__name__

    def __repr__(self) -> str:
        return f"StepChoice({self.name})"


class StepChoiceType(types.Type):
    """The numba type of a StepChoice: the kernel's name, not its row, so that a cached kernel never runs
    another optimizer if the table's order changes."""

    def __init__(self, kernel_name: str):
        self.kernel_name = kernel_name
        super().__init__(name=f"StepChoice({kernel_name})")


@typeof_impl.register(StepChoice)
def _typeof_step_choice(val, c):
    return StepChoiceType(val.name)


@register_model(StepChoiceType)
class _StepChoiceModel(models.PrimitiveModel):
    """The row, as an int64: the table's version dispatches on it; a single kernel's ignores it."""

    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.IntType(64))


@unbox(StepChoiceType)
def _unbox_step_choice(typ, obj, c):
    row = c.pyapi.object_getattr_string(obj, "opt_id")
    value = c.pyapi.long_as_longlong(row)
    c.pyapi.decref(row)
    return NativeValue(value)


@intrinsic
def _row(typingctx, step):
    if not isinstance(step, StepChoiceType):
        return None

    def codegen(context, builder, signature, args):
        return args[0]

    return types.int64(step), codegen


def kernel_named(name: str):
    """The step kernel of a StepChoice's name."""
    return _KERNEL_BY_NAME[name]


@cache
def step_choice(opt_id: int, table: bool = False) -> StepChoice:
    """The StepChoice of optimizer table row `opt_id` (one object a row), compiled for that row alone or
    (table) for the whole table."""
    return StepChoice(opt_id, table)


def chosen_step(step, theta, grad, state, scal, hp, lr):
    """optimizer_step for the one step kernel `step` names (only callable from a kernel)."""
    raise TypeError("chosen_step() is for use inside @njit kernels")


@overload(chosen_step, jit_options={"cache": True})
def _chosen_step(step, theta, grad, state, scal, hp, lr):
    if not isinstance(step, StepChoiceType):
        return None
    if step.kernel_name == TABLE:
        optimizer_step = O.optimizer_step

        def table_impl(step, theta, grad, state, scal, hp, lr):
            optimizer_step(_row(step), theta, grad, state, scal, hp, lr)

        return table_impl
    kernel = _KERNEL_BY_NAME[step.kernel_name]
    begin_update, rest_step, S_REST = O.begin_update, O.rest_step, O.S_REST

    # optimizer_step with its dispatch resolved here; only an optimizer for matrices (Muon) hands its vectors
    # to a rest optimizer, and only its version compiles rest_step (the whole table)
    def impl(step, theta, grad, state, scal, hp, lr):
        hp_t = begin_update(grad, scal, hp)
        kernel(theta, grad, state, scal, hp_t, lr)

    def impl_with_rest(step, theta, grad, state, scal, hp, lr):
        hp_t = begin_update(grad, scal, hp)
        kernel(theta, grad, state, scal, hp_t, lr)
        if scal[S_REST] > 0.0:
            rest_step(theta, grad, state, scal, hp, lr)

    return impl_with_rest if kernel is O.muon_step else impl
