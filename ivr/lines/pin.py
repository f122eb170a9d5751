"""The PIN check of the trigger and report lines.

Callers may be restricted to listed numbers (IVR_TRIGGER_CALLERS); a locked-out caller is told so
at once; three wrong PINs lock the caller id out (`ivr.access.pins`), and a flood of wrong PINs
from many caller ids slows every wrong answer down. Each refusal is audited.
"""

from __future__ import annotations

import asyncio

from ivr.access import audit
from ivr.lines.call import MAX_DIGITS, TRIES, LineCall
from ivr.numbers import number_key


async def authenticate(call: LineCall, *, placed: bool = False) -> str | None:
    """The staff id behind a right PIN, or None when the call must end (it was told why).

    `placed`: a call the service placed (the director's call-back), to a number it chose: not
    screened against IVR_TRIGGER_CALLERS, and the PIN is asked for the action about to be
    taken, not as a line's welcome."""
    context = call.context
    caller = call.session.caller_id
    # The network may give +33 6..., 0033 6... or 06...: compare the national part.
    allowed = {number_key(n) for n in context.config.trigger_callers}
    if not placed and allowed and number_key(caller) not in allowed:
        await audit.record(context.redis, f"phone:{caller or 'anonymous'}", "line.refused",
                           target=call.line)  # fmt: skip
        await call.play(call.p("not_allowed"))
        return None
    if await call.meanwhile(context.pins.locked_for(caller)):
        await call.play(call.p("locked"))
        return None
    intro = call.p("recall_pin" if placed else f"line_{call.line}")
    silent = 0
    while silent < TRIES:
        call.step("pin")
        pin = await call.session.read(
            f"{intro}&{call.p('pin_enter')}" if intro else call.p("pin_enter"),
            timeout=context.digits_wait,
            max_digits=MAX_DIGITS,
        )
        intro = ""
        if not pin:
            silent += 1
            if pin == "":
                await call.play(call.p("not_understood"))
            continue
        check = await context.pins.check(pin, caller, line=call.line)
        if check.person is not None:
            return check.person
        if check.slow_down:
            await asyncio.sleep(check.slow_down)
        if check.locked_for:
            await call.play(call.p("pin_wrong", "locked"))
            return None
        await call.play(call.p("pin_wrong"))
    await call.play(call.p("goodbye"))
    return None
