"""How a claim reads on the page: verdict badges, measured values with units, named constants,
the test behind a verdict, one anchor per claim.

The chapters' verdict tables (:meth:`accel.repro.results.Results.verdict_table`), the
"Findings at this profile" box (:mod:`accel.repro.render`) and the report page
(:mod:`accel.repro.report`) all format claims here, so a claim reads the same wherever it
appears and the report's links land on the row that decided it (``#claim-<id>``).
Styling lives in ``book/_static/accel.css``; the HTML only names classes.
"""
from __future__ import annotations

import html
import math
import re
from typing import Any, Callable, Iterable, Mapping

from .claims import CHECK, CLAIM, FAILED, HELD, ILLUSTRATION, INCONCLUSIVE

KIND_ORDER = {CLAIM: 0, ILLUSTRATION: 1, CHECK: 2}
NOT_A_NUMBER = "–"  # what a NaN shows: the value does not exist (diverged, never reached)


class Named(float):
    """A constant that prints under its name in a criterion and computes as its value.

    ``claims.threshold(..., "<", Named(math.log(1.25), "ln 1.25"))`` records the criterion
    "value < ln 1.25" instead of "value < 0.223144"; the record keeps the number.
    """

    name: str

    def __new__(cls, value: float, name: str) -> "Named":
        obj = super().__new__(cls, value)
        obj.name = name
        return obj

    def __format__(self, spec: str) -> str:
        return self.name if spec in ("", "g") else format(float(self), spec)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Named({float(self)!r}, {self.name!r})"

    def __reduce__(self) -> tuple:
        return Named, (float(self), self.name)


def named(name: str, value: float) -> Named:
    """``named("ln 1.25", math.log(1.25))``: see :class:`Named`."""
    return Named(value, name)


# Constants a criterion may print as a bare float (":g" keeps 6 significant digits).
CONSTANTS: dict[str, float] = {
    "ln 2": math.log(2), "ln 1.25": math.log(1.25), "ln 1.5": math.log(1.5), "ln 10": math.log(10),
    "ln 1.1": math.log(1.1), "√2": math.sqrt(2), "1/√2": 1 / math.sqrt(2), "√3": math.sqrt(3),
    "1/√3": 1 / math.sqrt(3), "π": math.pi, "2/π": 2 / math.pi, "e": math.e, "1/e": 1 / math.e,
    "√10": math.sqrt(10), "1/√10": 1 / math.sqrt(10),
}
_DECIMAL = re.compile(r"(?<![\w.])(-?\d+\.\d{4,})(?![\w.])")


def name_constants(text: str) -> str:
    """Replace bare floats that are a known constant to their printed precision by its name
    ("< 0.223144" becomes "< ln 1.25 ≈ 0.2231")."""
    def swap(m: re.Match) -> str:
        token = m.group(1)
        value, decimals = float(token), len(token.split(".")[1])
        for name, const in CONSTANTS.items():
            for sign, shown in ((1, name), (-1, f"−{name}")):
                if round(sign * const, decimals) == value:
                    return f"{shown} ≈ {fmt_number(value)}"
        return token
    return _DECIMAL.sub(swap, str(text))


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def fmt_number(value: Any, digits: int = 4) -> str:
    """A number as a reader wants it: 4 significant digits, "1.2 × 10⁻⁵" for tiny or huge values,
    "–" for NaN, thousands kept whole."""
    if isinstance(value, bool) or value is None:
        return "–" if value is None else ("yes" if value else "no")
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("nan", "none", "<na>"):
            return NOT_A_NUMBER
        if low in ("inf", "+inf", "infinity"):
            return "∞"
        if low == "-inf":
            return "−∞"
        return value
    if isinstance(value, int):
        text = f"{value:,}".replace(",", "\u202f") if abs(value) >= 10_000 else str(value)
        return text.replace("-", "−")
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return NOT_A_NUMBER
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e6:
        return fmt_number(int(x))
    exp = math.floor(math.log10(abs(x)))
    if exp <= -4 or exp >= 6:
        mantissa = f"{x / 10 ** exp:.{max(digits - 2, 1)}f}".rstrip("0").rstrip(".")
        return f"{mantissa} × 10{str(exp).translate(_SUPERSCRIPT)}".replace("-", "−", 1)
    return f"{x:.{digits}g}".replace("-", "−")


def fmt_measured(value: Any, unit: str | None = None) -> str:
    """The measured value with its unit; a list shows its first entries."""
    if isinstance(value, (list, tuple)):
        shown = ", ".join(fmt_number(v) for v in value[:4])
        text = f"[{shown}{', …' if len(value) > 4 else ''}]"
    else:
        text = fmt_number(value)
    if unit and text not in (NOT_A_NUMBER, ""):
        return f"{text}{'' if unit in ('%', '×') else ' '}{unit}"
    return text


def fmt_p(p: Any) -> str:
    try:
        p = float(p)
    except (TypeError, ValueError):
        return "–"
    if math.isnan(p):
        return "–"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def decision_summary(test: Mapping[str, Any] | None, unit: str | None = None, verdict: str | None = None) -> str:
    """One line saying how the verdict was decided: test, n per arm, p, interval, detectable effect.

    For a failed claim the p-value shown is the one that decided it (the opposite test)."""
    if not test:
        return ""
    parts = [str(test.get("test", "test"))]
    n = test.get("n")
    if n:
        parts.append("n = " + " + ".join(str(k) for k in n) + (" per arm" if len(n) > 1 else ""))
    against = next((test[k] for k in ("p_opposite", "p_outside") if k in test), None)
    if verdict == FAILED and _finite(against):
        parts.append(fmt_p(against) + " against the claim")
    elif _finite(test.get("p_value")):
        parts.append(fmt_p(test["p_value"]))
    if _finite(test.get("ci_low")) and _finite(test.get("ci_high")):
        level = float(test.get("ci_level", 0.95))
        parts.append(f"{level:.0%} CI [{fmt_number(test['ci_low'], 3)}, {fmt_number(test['ci_high'], 3)}]"
                     .replace("%", " %"))
    if _finite(test.get("mde")):
        parts.append(f"detectable ≥ {fmt_measured(test['mde'], unit)}")
    return " · ".join(parts)


_OPERATOR = re.compile(r"\s(?:<=|>=|<|>|≤|≥)\s")


def quantity(claim: Mapping[str, Any]) -> str:
    """What the measured number is ("loss(A) − loss(B)"): the claim's ``what`` detail, else read off
    its criterion ("…: what < 0", "what > 0.8", "0.2 <= what <= 0.25", "|what| < m")."""
    details = claim.get("details") or {}
    if isinstance(details, Mapping) and details.get("what"):
        return str(details["what"])
    text = str(claim.get("criterion", "")).rsplit(": ", 1)[-1]
    pieces = _OPERATOR.split(text)
    if len(pieces) == 3:  # low <= what <= high
        return pieces[1].strip()
    what = pieces[0].strip() if pieces else ""
    return what[1:-1] if what.startswith("|") and what.endswith("|") else what


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def anchor_id(claim_id: str) -> str:
    """The HTML id of a claim's row: ``claim-<id>`` with anything but letters, digits, ``_``, ``-`` as ``-``."""
    return "claim-" + re.sub(r"[^A-Za-z0-9_-]+", "-", str(claim_id)).strip("-")


BADGE_TEXT = {(CLAIM, HELD): "held", (CLAIM, FAILED): "failed", (CLAIM, INCONCLUSIVE): "inconclusive",
              (CHECK, HELD): "check ✓", (CHECK, FAILED): "check ✗", (CHECK, INCONCLUSIVE): "check ?",
              (ILLUSTRATION, HELD): "illustration ✓", (ILLUSTRATION, FAILED): "illustration ✗",
              (ILLUSTRATION, INCONCLUSIVE): "illustration ?"}


def badge(verdict: str, kind: str = CLAIM) -> str:
    """A coloured verdict badge (HTML); a failed check is red like a failed claim."""
    text = BADGE_TEXT.get((kind, verdict), f"{kind}: {verdict}")
    colour = verdict if kind == CLAIM or verdict != HELD else kind
    return f'<span class="accel-badge accel-{html.escape(colour)}">{html.escape(text)}</span>'


LEGEND = ("<p class=\"accel-legend\">" + " ".join([
    badge(HELD) + " the test rejected the alternative at the chapter's level",
    badge(FAILED) + " the data contradict the claim",
    badge(INCONCLUSIVE) + " the seeds cannot separate the alternatives (or a run diverged, or a "
    "precondition was not met)",
    badge(HELD, CHECK) + " an identity or deterministic demonstration (not evidence)",
    badge(HELD, ILLUSTRATION) + " a single run (not evidence)"]) + "</p>")


def claim_dict(claim: Any) -> dict[str, Any]:
    """A claim as a plain dict (a :class:`~accel.repro.claims.Claim` or a record's entry)."""
    out = dict(claim) if isinstance(claim, Mapping) else claim.to_dict()
    if not out.get("id"):  # a record from before claims had ids
        out["id"] = re.sub(r"\W+", "-", str(out.get("statement", "claim")).lower()).strip("-")[:48]
    return out


def counts(claims: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Empirical verdicts (held/failed/inconclusive) and the checks and illustrations apart."""
    out = {HELD: 0, FAILED: 0, INCONCLUSIVE: 0, CHECK: 0, ILLUSTRATION: 0, "checks_failed": 0}
    for c in claims:
        kind = c.get("kind", CLAIM)
        if kind == CLAIM:
            out[c["verdict"]] = out.get(c["verdict"], 0) + 1
        else:
            out[kind] += 1
            out["checks_failed"] += c["verdict"] != HELD
    return out


def headline(n: Mapping[str, int]) -> str:
    """ "empirical: 3 held / 1 failed / 2 inconclusive" (evidence only; see :func:`apart`)."""
    return f"empirical: {n[HELD]} held / {n[FAILED]} failed / {n[INCONCLUSIVE]} inconclusive"


def apart(n: Mapping[str, int]) -> str:
    """ "2 checks and 1 single-run illustration, not counted as evidence (all passed)", or ""."""
    parts = []
    if n[CHECK]:
        parts.append(f"{n[CHECK]} check{'s' * (n[CHECK] != 1)}")
    if n[ILLUSTRATION]:
        parts.append(f"{n[ILLUSTRATION]} single-run illustration{'s' * (n[ILLUSTRATION] != 1)}")
    if not parts:
        return ""
    failed = n["checks_failed"]
    return (f"{' and '.join(parts)}, not counted as evidence "
            f"({'all passed' if not failed else f'{failed} did not pass'})")


def why(claim: Mapping[str, Any]) -> str:
    details = claim.get("details") or {}
    return str(details.get("why", "")) if isinstance(details, Mapping) else ""


def unit_of(claim: Mapping[str, Any]) -> str | None:
    details = claim.get("details") or {}
    return details.get("unit") if isinstance(details, Mapping) else None


def _row(c: Mapping[str, Any], href: str | None, with_source: bool) -> str:
    e = html.escape
    unit = unit_of(c)
    statement = e(str(c.get("statement", "")))
    if href:
        statement = f'<a href="{e(href)}">{statement}</a>'
    measured = f'<span class="accel-value">{e(fmt_measured(c.get("measured"), unit))}</span>'
    notes = [decision_summary(c.get("test"), unit, c.get("verdict")), why(c)]
    measured += "".join(f'<span class="accel-note">{e(n)}</span>' for n in notes if n)
    cells = [badge(c.get("verdict", ""), c.get("kind", CLAIM)),
             f'{statement}<span class="accel-claim-id">{e(str(c.get("id", "")))}</span>',
             measured, e(name_constants(c.get("criterion", "")))]
    if with_source:
        cells.append(e(str(c.get("source", ""))))
    return (f'<tr class="accel-claim" data-claim="{e(anchor_id(c.get("id", "")))}">'
            + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")


def verdict_table_html(claims: Iterable[Any], *, link: Callable[[Mapping[str, Any]], str | None] | None = None,
                       legend: bool = True, with_source: bool = True) -> str:
    """The claims as one HTML table: evidence first, then checks and illustrations in their own
    section; every row carries ``data-claim`` (the book turns the first one into the claim's anchor)."""
    rows = sorted((claim_dict(c) for c in claims), key=lambda c: KIND_ORDER.get(c.get("kind", CLAIM), 3))
    head = ["verdict", "claim", "measured", "criterion"] + (["source"] if with_source else [])
    out = ['<div class="accel-verdicts"><table class="accel-verdict-table">',
           "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    section = None
    for c in rows:
        evidence = c.get("kind", CLAIM) == CLAIM
        if evidence != section:
            title = "Empirical claims" if evidence else "Checks and illustrations (not counted as evidence)"
            out.append(f'<tr class="accel-section"><th colspan="{len(head)}">{title}</th></tr>')
            section = evidence
        out.append(_row(c, link(c) if link else None, with_source))
    out.append("</tbody></table>")
    if legend:
        out.append(LEGEND)
    out.append("</div>")
    return "".join(out)
