"""The one renderer: headers and rows of text -> a text, Markdown, LaTeX or HTML table with its caption.

Cells are formatted here too (mean ± std, budgets, the best-per-column mark), so that every table
of the harness, the run's and the report's, looks the same.
"""
from __future__ import annotations

import html
import re
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from tabulate import tabulate

from bench.reporting import FORMATS

BOUNDARY_MARK = "†"   # the method needs task boundaries
BEST_MARK = "*"       # the best per column in text tables (bold in Markdown, LaTeX and HTML)
SAME_MARK = "≈"       # not distinguishable from the column's best (significance.py); $\approx$ in LaTeX


def mean_std(mean: float, std: float, digits: int = 2) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def budget_text(mean: float) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean / 1000:.1f}k" if mean >= 10000 else f"{mean:.0f}"


def method_label(method: str, needs_boundaries: bool) -> str:
    return method + (BOUNDARY_MARK if needs_boundaries else "")


def latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"),
                 ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"),
                 ("^", r"\textasciicircum{}"), ("†", r"$^\dagger$"), ("‡", r"$^\ddagger$"), ("±", r"$\pm$"),
                 ("≈", r"$\approx$"), ("↓", r"$\downarrow$"), ("↑", r"$\uparrow$"),
                 ("<", r"$<$"), (">", r"$>$")):   # plain < and > print as ¡ and ¿ in LaTeX's OT1 font
        text = text.replace(a, b)
    return text


def emphasise(text: str, fmt_name: str) -> str:
    """The cell's text escaped for the format, and marked as best."""
    if fmt_name == "latex":
        return f"\\textbf{{{latex_escape(text)}}}"
    if fmt_name == "html":
        return f"<strong>{html.escape(text)}</strong>"
    return f"**{text}**" if fmt_name == "markdown" else f"{text} {BEST_MARK}"


def mark_same(text: str) -> str:
    """The cell's text marked as not distinguishable from the column's best (escape afterwards)."""
    return f"{text} {SAME_MARK}"


def plain(text: str, fmt_name: str) -> str:
    if fmt_name == "html":
        return html.escape(text)
    return latex_escape(text) if fmt_name == "latex" else text


CAPTION_WIDTH = 120   # a terminal's width: text tables wider than this print in column groups
# `bench.report --wide`: each text table in one piece, however wide (a ContextVar, not a flag
# threaded through every layout)
ONE_PIECE: ContextVar[bool] = ContextVar("one_piece", default=False)


@contextmanager
def one_piece_tables():
    """Within it, text tables are not split to fit CAPTION_WIDTH (`--wide`)."""
    token = ONE_PIECE.set(True)
    try:
        yield
    finally:
        ONE_PIECE.reset(token)


# Characters of a LaTeX table's widest line above which its font shrinks: a landscape page with 1 cm
# margins holds about 150 characters of 10 pt text, a portrait one about 70 (the Table-1 study's
# layout with the paper's columns is 208, its claims table 216: both fit that page in \tiny).
LATEX_SIZES = ((200, (r"\tiny", r"\setlength{\tabcolsep}{3pt}")),
               (150, (r"\scriptsize", r"\setlength{\tabcolsep}{2pt}")),
               (100, (r"\footnotesize", r"\setlength{\tabcolsep}{3pt}")))


def latex_visible(text: str) -> str:
    """A LaTeX cell as the reader sees it (roughly): commands and braces gone, $\\pm$ one character."""
    return re.sub(r"\\[a-zA-Z]+|[{}$^]", "", text.replace(r"$\pm$", "±"))


# Visible characters of a LaTeX cell above which it is stacked on several lines: a claims cell
# (verdict, d and its interval, p, the paper's d) is about 70, four of them overflow even \tiny
LATEX_CELL_LINE = 40


def latex_break_points(text: str) -> list[int]:
    """Indices of the spaces of a LaTeX cell outside braces and math, where a line may break."""
    points, depth, math = [], 0, False
    for i, ch in enumerate(text):
        if i and text[i - 1] == "\\":   # an escaped \$, \{ or \} is a character, not math or a group
            continue
        if ch == "$":
            math = not math
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == " " and depth == 0 and not math:
            points.append(i)
    return points


def latex_stacked(cell: str) -> str:
    """A long cell as lines of at most LATEX_CELL_LINE visible characters (greedily, at spaces
    outside braces and math), in a nested tabular that keeps the column's centring; a short cell,
    or one with nowhere to break, unchanged."""
    if len(latex_visible(cell)) <= LATEX_CELL_LINE:
        return cell
    lines, start, last = [], 0, None
    for point in [*latex_break_points(cell), len(cell)]:
        if last is not None and last > start and len(latex_visible(cell[start:point])) > LATEX_CELL_LINE:
            lines.append(cell[start:last])
            start = last + 1
        last = point
    lines.append(cell[start:])
    if len(lines) == 1:
        return cell
    return STACK_OPEN + r" \\ ".join(lines) + STACK_CLOSE


STACK_OPEN, STACK_CLOSE = r"\begin{tabular}[t]{@{}c@{}}", r"\end{tabular}"


def latex_cell_width(cell: str) -> int:
    """Visible characters of a cell's widest line (a stacked cell's lines measured apart)."""
    if cell.startswith(STACK_OPEN):
        return max(len(latex_visible(line)) for line in cell.removeprefix(STACK_OPEN).removesuffix(STACK_CLOSE).split(r" \\ "))
    return len(latex_visible(cell))


def latex_size(headers, rows) -> list[str]:
    """The font-size lines for a table whose widest line would overflow a page at 10 pt."""
    columns = list(zip(headers, *rows))
    width = sum(max(map(latex_cell_width, column)) + 3 for column in columns)
    return next((list(lines) for limit, lines in LATEX_SIZES if width > limit), [])


def text_table(headers, rows, maxcolwidths=None) -> str:
    """A plain-text table, numbers left as the caller formatted them."""
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True, maxcolwidths=maxcolwidths)


def text_width(table: str) -> int:
    return max(map(len, table.splitlines()))


def fitted_tables(headers, rows, width: int) -> list[str]:
    """A text table wider than `width` as several, each the first column (the row's label) and as
    many of the next columns as fit; a column that does not fit even alone is wrapped inside its
    cells."""
    groups, current = [], []
    for j in range(1, len(headers)):
        trial = [0, *current, j]
        if current and text_width(text_table([headers[i] for i in trial], [[r[i] for i in trial] for r in rows])) > width:
            groups.append(current)
            current = [j]
        else:
            current.append(j)
    groups.append(current)
    out = []
    for group in groups:
        keep = [0, *group]
        part_headers, part_rows = [headers[i] for i in keep], [[r[i] for i in keep] for r in rows]
        table = text_table(part_headers, part_rows)
        if text_width(table) > width and len(group) == 1:   # one column too wide: wrap it
            label = max(len(str(x)) for x in [part_headers[0], *(r[0] for r in part_rows)])
            table = text_table(part_headers, part_rows, maxcolwidths=[None, max(20, width - label - 4)])
        out.append(table)
    return out


def stream_heading(stream: str, fmt_name: str) -> str:
    """A per-stream table's heading on the HTML page (the other formats name it in the caption)."""
    return f"<h5>{html.escape(stream)}</h5>\n" if fmt_name == "html" else ""


def html_cell(text: str) -> str:
    """A narrow column wraps a cell between its numbers, never inside one: after each '/' ('3000/
    3000', P/R/D/C), and at the space before '±', not after it (the spread stays with its sign)."""
    return re.sub(r"(?<!<)/(?!>)", "/<wbr>", text).replace("± ", "±&nbsp;")   # not a tag's '/'.


def render(headers, rows, fmt_name: str, title: str, width: int | None = CAPTION_WIDTH) -> str:
    """Headers and rows come already escaped/emphasised for `fmt_name` (`plain`, `emphasise`).
    `width`: a text table's caption is wrapped to the table's width, at least 80 and at most
    `width` columns (None: one line)."""
    if fmt_name not in FORMATS:
        raise ValueError(f"the renderer draws {', '.join(FORMATS)}, not '{fmt_name}'")
    if fmt_name == "latex":
        spec = "l" + "c" * (len(headers) - 1)
        rows = [[row[0], *map(latex_stacked, row[1:])] for row in rows]   # the label never wraps
        lines = [r"\begin{table}[t]", r"\centering", *latex_size(headers, rows),
                 f"\\caption{{{latex_escape(title)}}}",
                 f"\\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(headers) + r" \\",
                 r"\midrule"]
        for row in rows:
            lines.append(" & ".join(row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(lines) + "\n"
    if fmt_name == "html":   # a <table> with its caption (a page's fragment: bench/reporting/html.py)
        head = "".join(f"<th>{h}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html_cell(c)}</td>" for c in row) + "</tr>\n" for row in rows)
        return (f'<figure class="table"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>'
                f"</table>\n<figcaption>{html.escape(title)}</figcaption></figure>\n")
    table = tabulate(rows, headers=headers, tablefmt="github" if fmt_name == "markdown" else "simple",
                     disable_numparse=True)
    if width is not None and fmt_name == "text":
        import textwrap

        if text_width(table) > width and not ONE_PIECE.get():   # a terminal's width: in parts
            table = "\n\n".join(fitted_tables(headers, rows, width))
        wide = max(map(len, table.splitlines()))
        title = textwrap.fill(title, width=min(width, max(wide, 80)), break_on_hyphens=False)
    return f"{table}\n\n{title}\n"
