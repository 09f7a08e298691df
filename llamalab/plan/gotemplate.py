"""A small renderer for the part of Go's text/template that Ollama Modelfile TEMPLATEs use, so a
Modelfile can be checked against the model's own chat template without Ollama.

Supported: text; actions `{{ pipeline }}` with `{{-` / `-}}` trimming; `if` / `else if` / `else` /
`end`; `range` over a list (`range .Messages`, `range $i, $m := .Messages`); variables (`$`,
`$x := …`, `$x = …`); fields (`.Role`, `$.System`, `$m.Content`); string, number and bool
literals; parenthesised calls of `eq`, `ne`, `and`, `or`, `not`, `len` and `slice`. Anything else
(`with`, `template`, `block`, pipes `|`, other functions, comments, a missing field) raises
GoTemplateUnsupported: a clear refusal rather than a wrong render. Semantics follow Go's
text/template (pkg.go.dev/text/template): truth is "not the zero value", `and`/`or` return an
argument, printing a bool gives true/false.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..core.errors import InvalidSetting

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|(:=|=)|(,)|([^\s(),=:]+))')
_SPACE = " \t\r\n"
_FUNCS = ("eq", "ne", "and", "or", "not", "len", "slice")


class GoTemplateUnsupported(InvalidSetting):
    """The template uses Go template syntax outside the supported subset, or a field the data
    lacks."""

    def __init__(self, what: str):
        super().__init__(
            f"Cannot render this Go template: {what}.",
            "Check it with Ollama itself (`ollama create`, then `ollama run`), or keep the "
            "TEMPLATE to the subset this checker reads (see llamalab.plan.gotemplate).",
        )


@dataclass
class _Node:
    kind: str  # text, action, if, range
    text: str = ""
    words: list = field(default_factory=list)  # tokens of the action / condition / range clause
    body: list = field(default_factory=list)
    orelse: list = field(default_factory=list)


def render(template: str, data: dict) -> str:
    """`template` executed with `data` as dot (dicts stand for Go structs and maps)."""
    nodes, rest = _parse(_lex(template), stop=())
    if rest:
        raise GoTemplateUnsupported(f"{{{{ {' '.join(rest[0][1])} }}}} without its block")
    out: list[str] = []
    _run(nodes, data, [{"$": data}], out)
    return "".join(out)


def _lex(template: str) -> list[tuple[str, object]]:
    """Text pieces and actions (as token lists), with `{{-` / `-}}` trimming applied."""
    items: list[tuple[str, object]] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if trim_next:
            text = text.lstrip(_SPACE)
        if m.group(1):
            text = text.rstrip(_SPACE)
        items.append(("text", text))
        body = m.group(2).strip()
        if body.startswith("/*"):
            raise GoTemplateUnsupported("comments")
        items.append(("action", _tokens(body)))
        pos, trim_next = m.end(), bool(m.group(3))
    tail = template[pos:]
    items.append(("text", tail.lstrip(_SPACE) if trim_next else tail))
    return items


def _tokens(body: str) -> list[str]:
    out, pos = [], 0
    while pos < len(body.rstrip()):
        m = _TOKEN.match(body, pos)
        if not m or m.end() == pos:
            raise GoTemplateUnsupported(f"cannot read {body!r}")
        out.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    if "|" in out:
        raise GoTemplateUnsupported("pipes (|)")
    return out


def _parse(items, stop: tuple[str, ...]):
    """Nodes until an action whose first word is in `stop`; returns (nodes, the remaining items
    starting at that action)."""
    nodes: list[_Node] = []
    while items:
        kind, value = items[0]
        items = items[1:]
        if kind == "text":
            if value:
                nodes.append(_Node("text", text=str(value)))
            continue
        words = list(value)  # type: ignore[call-overload]
        head = words[0] if words else ""
        if head in stop:
            return nodes, [(kind, words), *items]
        if head in ("if", "range"):
            node, items = _block(head, words[1:], items)
            nodes.append(node)
        elif head in ("with", "template", "block", "define", "break", "continue", "else", "end"):
            raise GoTemplateUnsupported(f"{{{{ {head} }}}} here")
        else:
            nodes.append(_Node("action", words=words))
    return nodes, []


def _block(head: str, words: list, items):
    body, items = _parse(items, stop=("else", "end"))
    if not items:
        raise GoTemplateUnsupported(f"{{{{ {head} }}}} without {{{{ end }}}}")
    node = _Node(head, words=words, body=body)
    _, closing = items[0]
    items = items[1:]
    if closing[0] == "else" and closing[1:2] == ["if"] and head == "if":
        inner, items = _block("if", closing[2:], items)  # `else if` closes with the same end
        node.orelse = [inner]
        return node, items
    if closing[0] == "else":
        if len(closing) > 1:
            raise GoTemplateUnsupported(f"{{{{ else {' '.join(closing[1:])} }}}}")
        node.orelse, items = _parse(items, stop=("end",))
        if not items:
            raise GoTemplateUnsupported(f"{{{{ {head} }}}} without {{{{ end }}}}")
        items = items[1:]
    return node, items


def _run(nodes: list[_Node], dot, scopes: list[dict], out: list[str]) -> None:
    for n in nodes:
        if n.kind == "text":
            out.append(n.text)
        elif n.kind == "action":
            value = _statement(n.words, dot, scopes)
            if value is not None:
                out.append(_print(value))
        elif n.kind == "if":
            branch = n.body if _truth(_statement(n.words, dot, scopes)) else n.orelse
            _run(branch, dot, [*scopes, {}], out)
        else:
            _range(n, dot, scopes, out)


def _range(n: _Node, dot, scopes: list[dict], out: list[str]) -> None:
    names, words = [], n.words
    if ":=" in words:
        split = words.index(":=")
        names, words = [w for w in words[:split] if w != ","], words[split + 1 :]
    items = _expr(words, dot, scopes)
    if not isinstance(items, (list, tuple)):
        raise GoTemplateUnsupported(f"range over {type(items).__name__}")
    if not items:
        _run(n.orelse, dot, [*scopes, {}], out)
    for i, item in enumerate(items):
        bound = dict(zip(names, (i, item) if len(names) == 2 else (item,)))
        _run(n.body, item, [*scopes, bound], out)


def _statement(words: list, dot, scopes: list[dict]):
    """An action: a declaration / assignment (prints nothing) or an expression."""
    if len(words) > 2 and words[1] in (":=", "=") and words[0].startswith("$"):
        value = _expr(words[2:], dot, scopes)
        if words[1] == ":=":
            scopes[-1][words[0]] = value
            return None
        scope = next((s for s in reversed(scopes) if words[0] in s), None)
        if scope is None:
            raise GoTemplateUnsupported(f"assignment to undefined variable {words[0]}")
        scope[words[0]] = value
        return None
    return _expr(words, dot, scopes)


def _expr(words: list, dot, scopes: list[dict]):
    args, rest = _args(words, dot, scopes)
    if rest:
        raise GoTemplateUnsupported(f"unexpected {rest[0]!r}")
    return args[0] if len(args) == 1 else _call(args)


def _args(words: list, dot, scopes: list[dict]):
    """Operands up to a closing parenthesis; a call's function name stays a `_Func`."""
    out: list = []
    while words and words[0] != ")":
        w, words = words[0], words[1:]
        if w == "(":
            inner, words = _args(words, dot, scopes)
            if not words:
                raise GoTemplateUnsupported("an unclosed (")
            words = words[1:]
            out.append(inner[0] if len(inner) == 1 else _call(inner))
        else:
            out.append(_operand(w, dot, scopes, first=not out))
    return out, words


@dataclass(frozen=True)
class _Func:
    name: str


def _operand(w: str, dot, scopes: list[dict], first: bool):
    if w.startswith('"'):
        return bytes(w[1:-1], "utf-8").decode("unicode_escape")
    if w in ("true", "false"):
        return w == "true"
    if re.fullmatch(r"-?\d+", w):
        return int(w)
    if w == ".":
        return dot
    if w.startswith("."):
        return _fields(dot, w[1:].split("."))
    if w.startswith("$"):
        name, _, path = w.partition(".")
        scope = next((s for s in reversed(scopes) if name in s), None)
        if scope is None:
            raise GoTemplateUnsupported(f"undefined variable {name}")
        return _fields(scope[name], path.split(".")) if path else scope[name]
    if first and w in _FUNCS:
        return _Func(w)
    raise GoTemplateUnsupported(f"{w!r}")


def _fields(value, path: list[str]):
    for name in path:
        if not isinstance(value, dict) or name not in value:
            raise GoTemplateUnsupported(f"no field .{name}")
        value = value[name]
    return value


def _call(args: list):
    f, rest = args[0], args[1:]
    if not isinstance(f, _Func):
        raise GoTemplateUnsupported(f"{_print(f)!r} is not a function")
    if f.name in ("eq", "ne"):
        same = any(rest[0] == other for other in rest[1:])
        return same if f.name == "eq" else not same
    if f.name == "and":
        return next((a for a in rest if not _truth(a)), rest[-1])
    if f.name == "or":
        return next((a for a in rest if _truth(a)), rest[-1])
    if f.name == "not":
        return not _truth(rest[0])
    if f.name == "len":
        return len(rest[0])
    bounds = [int(i) for i in rest[1:]]  # slice x i [j]
    return rest[0][bounds[0] : bounds[1] if len(bounds) > 1 else None]


def _truth(value) -> bool:
    return bool(value) if value is not None else False


def _print(value) -> str:
    if value is None:
        return "<no value>"  # what Go prints for a nil value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple, _Func)):
        raise GoTemplateUnsupported(f"printing a {type(value).__name__}")
    return str(value)
