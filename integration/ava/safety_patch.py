"""After safety's output markers are in: simulate-ava uses the common marker mechanism."""
def edit(p, pairs):
    s = open(p).read()
    for old, new in pairs:
        if old not in s:
            print("MISSING in", p, ":", old[:80]); continue
        s = s.replace(old, new, 1)
    open(p, "w").write(s)

edit("aadb_toolkit/_atomic.py", [('"simulated_release": "aadb simulate", ', '"simulated_release": "aadb simulate", "simulated_ava": "aadb simulate-ava", ')])
edit("aadb_toolkit/simulate/_ava.py", [
("from .._atomic import atomic_dir\n", "from .._atomic import atomic_dir, check_output_folder\n"),
('''_STREAM = 41  # random streams of this generator: [seed, _STREAM, part, ...]
''', '''_STREAM = 41  # random streams of this generator: [seed, _STREAM, part, ...]
#: The output-marker kind of a synthetic AVA folder (see :mod:`aadb_toolkit._atomic`).
AVA_KIND = "simulated_ava"
'''),
('''    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / ava.SYNTHETIC_MARKER).is_file())):
        raise InputError(f"exists and is not a synthetic AVA written by the toolkit (no {ava.SYNTHETIC_MARKER}); "
                         "refusing to replace it", file=str(out))
''', '''    check_output_folder(out, AVA_KIND)  # before the work: only a synthetic AVA the toolkit wrote is replaced
'''),
("    with atomic_dir(out) as d:\n", "    with atomic_dir(out, kind=AVA_KIND) as d:\n"),
])
edit("docs/synthetic.md", [(
"an existing non-empty folder is replaced only when it holds `SYNTHETIC_AVA.json` (the marker this command writes), never otherwise",
"an existing non-empty folder is replaced only when it carries the toolkit's output marker of a synthetic AVA and no files the toolkit did not write (docs/safety.md); `SYNTHETIC_AVA.json` marks the data as synthetic for every later stage")])
