"""AVA on top of reproduce: test_data / shared run per row, extra metric columns, list keys for
paper numbers, --ava. Run from the repo root; prints what did not apply."""
import sys

def edit(p, pairs):
    s = open(p).read()
    for old, new in pairs:
        if old not in s:
            print("MISSING in", p, ":", old[:90].replace("\n", "\\n")); continue
        s = s.replace(old, new, 1)
    open(p, "w").write(s)

R = "aadb_toolkit/reproduce.py"
edit(R, [
("""    x: float | None = None
""", """    x: float | None = None
    test_data: str = ""  # role of the test set when it is not the training set (Table 7); default ``data``
    run: str = ""  # rows naming the same run share one trained model (Table 7's two test sets)

    @property
    def roles(self) -> set[str]:
        \"\"\"The data roles the row reads: its training set and its test set.\"\"\"
        return {self.data, self.test_data or self.data}
"""),
("""    note: str = ""
    source: str = ""
""", """    note: str = ""
    source: str = ""
    #: extra metric columns beside the main one: ``{metric, label, paper_index, scale}`` (Table 3's accuracy)
    columns: tuple[Mapping[str, Any], ...] = ()
"""),
("""            node = node[k]
""", """            node = node[tuple(k) if isinstance(k, list) else k]
"""),
("""def paper_number(keys: Sequence[Any], source: str = "recipe") -> float | None:""",
 """def paper_number(keys: Sequence[Any], source: str = "recipe", index: int = 0) -> float | None:"""),
("""    if isinstance(node, tuple):
        node = node[0]""", """    if isinstance(node, tuple):
        node = node[index]"""),
("""def score_row(protocol_name: str, run: Path, data: AADBData, *, n_boot: int, device: str | None = None,
              cache_dir: Path | None = None):""", """def score_row(protocol_name: str, run: Path, data: AADBData, *, n_boot: int, device: str | None = None,
              cache_dir: Path | None = None, dest: Path | None = None):"""),
("""    test_csv = write_predictions(predict(run, data, "test", device=device, cache_dir=cache_dir), run / "test.csv")""",
 """    dest = dest or run  # where the prediction files and the score go (a shared run's rows each have their own)
    test_csv = write_predictions(predict(run, data, "test", device=device, cache_dir=cache_dir), dest / "test.csv")"""),
("""                                    run / "validation.csv")""", """                                    dest / "validation.csv")"""),
("""    write_result(run / "score.json", result)""", """    write_result(dest / "score.json", result)"""),
("""    missing = sorted({r.data for r in recipe.rows} - set(sources))""",
 """    roles = set().union(*(r.roles for r in recipe.rows))
    missing = sorted(roles - set(sources))"""),
("""    synthetic = any(is_synthetic(sources[r]) for r in {r.data for r in recipe.rows})""",
 """    synthetic = any(is_synthetic(sources[r]) for r in roles)"""),
("""        run, setting = train_row(recipe, row, data, out / "runs" / slug(row.label), budget, init_weights=init_weights,""",
 """        run, setting = train_row(recipe, row, data, out / "runs" / slug(row.run or row.label), budget, init_weights=init_weights,"""),
("""        result = score_row(row.protocol or recipe.protocol, run, data, n_boot=n_boot, device=device,""",
 """        dest = out / "scores" / slug(row.label) if row.run else None
        if dest is not None:
            dest.mkdir(parents=True, exist_ok=True)
        result = score_row(row.protocol or recipe.protocol, run, sources[row.test_data or row.data], n_boot=n_boot,
                           device=device, dest=dest,"""),
])
s = open(R).read()
i = s.index("        result = score_row(row.protocol or recipe.protocol, run, sources[")
j = s.index("\n", s.index("dest=dest,", i))
line2 = s[j+1:s.index("\n", j+1)]
if "cache_dir=" in line2 and "n_boot=n_boot" in line2:
    s = s[:j+1] + line2.replace("n_boot=n_boot, device=device,", "").replace("                           cache_dir", "                           cache_dir") + s[s.index("\n", j+1):]
open(R, "w").write(s)

C = "aadb_toolkit/cli/reproduce.py"
import re as _re
c = open(C).read()
m = _re.search(r'( *)"aadb": \("--data", "aadb_toolkit.sources:load"(, "[^"]*")?\),\n', c)
if m is None:
    print("MISSING aadb SOURCE_OPTIONS row in", C)
else:
    three = m.group(2) is not None
    row = (m.group(1) + '"ava": ("--ava", "aadb_toolkit.sources:load"'
           + (', "AVA folder (AVA.txt, lists, images/; docs/ava.md) for tables 3 and 7"' if three else "") + "),\n")
    c = c[:m.end()] + row + c[m.end():]
    if not three:
        c = c.replace('''    parser.add_argument("--data", help="AADB: curated folder, published folder, or Hub repo id")
''', '''    parser.add_argument("--data", help="AADB: curated folder, published folder, or Hub repo id")
    parser.add_argument("--ava", help="AVA folder (AVA.txt, lists, images/; docs/ava.md) for tables 3 and 7")
''')
n = c.count("{r.data for r in recipe.rows}")
c = c.replace("{r.data for r in recipe.rows}", "set().union(*(r.roles for r in recipe.rows))")
if n == 0:
    print("MISSING roles loop in", C)
open(C, "w").write(c)

edit(R, [
("""                  note=raw.get("note", ""), source=source)""",
 """                  note=raw.get("note", ""), source=source, columns=_columns(raw.get("columns", []), source))


def _columns(raw: Sequence[Any], source: str) -> tuple[Mapping[str, Any], ...]:
    \"\"\"The recipe's extra metric columns, checked: each names a result ``metric`` and a ``label``;
    ``paper_index`` picks the paper value's entry (e.g. 1: Table 3's accuracy), ``scale`` multiplies ours.\"\"\"
    out = []
    for i, c in enumerate(raw):
        if not isinstance(c, dict) or not {"metric", "label"} <= set(c) or set(c) - {"metric", "label", "paper_index", "scale"}:
            raise InputError("a column needs metric and label (and optionally paper_index, scale)", file=source,
                             field=f"columns[{i}]")
        out.append({"metric": str(c["metric"]), "label": str(c["label"]), "paper_index": c.get("paper_index"),
                    "scale": float(c.get("scale", 1.0))})
    return tuple(out)"""),
("""        "p_bootstrap": None, "p_steiger": None, "data_synthetic": synthetic, "run": str(run),
    }""", """        "p_bootstrap": None, "p_steiger": None, "data_synthetic": synthetic, "run": str(run),
        **_extra_columns(recipe, row, result),
    }


def _extra_columns(recipe: Recipe, row: Row, result) -> dict[str, Any]:
    \"\"\"Ours and the paper's value of each extra column of the recipe (keys ``<label>``, ``paper <label>``).\"\"\"
    out: dict[str, Any] = {}
    for c in recipe.columns:
        m = result.metrics.get(c["metric"])
        out[c["label"]] = None if m is None or m.value is None else m.value * c["scale"]
        idx = c["paper_index"]
        out[f"paper {c['label']}"] = paper_number(row.paper, index=idx) if row.paper and idx is not None else None
    return out"""),
])
s = open(R).read()
old_head = '''    lines += ["| row | ours ρ | 95% CI | paper ρ | vs | Δρ | p | p_Z | val ρ | steps |",
              "|---|---|---|---|---|---|---|---|---|---|"]'''
new_head = '''    extra = [c["label"] for c in recipe.columns]
    head = "".join(f" ours {x} | paper {x} |" for x in extra)
    lines += ["| row | ours ρ | 95% CI | paper ρ |" + head + " vs | Δρ | p | p_Z | val ρ | steps |",
              "|---|---|---|---|" + "---|---|" * len(extra) + "---|---|---|---|---|---|"]'''
if old_head in s:
    s = s.replace(old_head, new_head)
    old_row = '''        lines.append(f"| {_md(label)} | {_fmt(r['ours'])} | {ci} | {_fmt(r['paper'])} | {_md(r['compared_with']) or '–'} | "'''
    new_row = '''        cells = "".join(f" {_fmt(r.get(x), 2)} | {_fmt(r.get('paper ' + x), 2)} |" for x in extra)
        lines.append(f"| {_md(label)} | {_fmt(r['ours'])} | {ci} | {_fmt(r['paper'])} |{cells} {_md(r['compared_with']) or '–'} | "'''
    if old_row in s:
        s = s.replace(old_row, new_row)
    else:
        print("MISSING markdown row")
else:
    print("MISSING markdown head")
s = s.replace('''        lines += ["> **Synthetic data — not AADB.** These numbers come from a synthetic release (a test "''',
              '''        lines += ["> **Synthetic data — not AADB or AVA.** These numbers come from synthetic data (a test "''')
open(R, "w").write(s)
