#!/usr/bin/env python3
"""gen-config-doc.py - rewrites the flag tables of docs/configuration.md from `ringtail -help`.

Usage: scripts/gen-config-doc.py [path/to/ringtail]   (default: build/ringtail)
Everything above the first '## ' heading of the document is kept; the tables below it are
generated, one section per flag prefix, in the order the binary lists them. With --check the
document is not written; the exit status tells whether it is up to date."""
import os
import re
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = [a for a in sys.argv[1:] if a != "--check"]
check = "--check" in sys.argv[1:]
binary = args[0] if args else os.path.join(root, "build", "ringtail")
doc = os.path.join(root, "docs", "configuration.md")

out = subprocess.run([binary, "-help"], capture_output=True, text=True)
text = out.stdout + out.stderr
flags = []
lines = text.splitlines()
for i, line in enumerate(lines):
    m = re.match(r"^  -(\S+)\s*(\S*)\s*$", line)
    if not m or i + 1 >= len(lines):
        continue
    name, typ = m.group(1), m.group(2) or "bool"
    help_line = lines[i + 1].strip()
    d = re.search(r"\(default \"?(.*?)\"?\)$", help_line)
    default = d.group(1) if d else ""
    help_text = help_line[: d.start()].strip() if d else help_line
    flags.append((name, typ, default, help_text))

sections = []
for name, typ, default, help_text in flags:
    sec = name.split(".", 1)[0] if "." in name else "general"
    if name in ("config.file", "log.level"):
        sec = "general"
    if not sections or sections[-1][0] != sec:
        sections.append((sec, []))
    sections[-1][1].append((name, typ, default, help_text))

def yaml_key(name):
    if name == "config.file":
        return "(flag only)"
    if "." not in name:
        return "`%s: …`" % name
    head, rest = name.split(".", 1)
    return "`%s: {%s: …}`" % (head, re.sub(r"[-.]", "_", rest))

body = []
for sec, items in sections:
    body.append("## %s\n" % sec)
    body.append("| flag | YAML | type | default | meaning |")
    body.append("| --- | --- | --- | --- | --- |")
    for name, typ, default, help_text in items:
        body.append("| `-%s` | %s | %s | `%s` | %s |" % (
            name, yaml_key(name), typ, default, help_text.replace("|", "\\|")))
    body.append("")

with open(doc) as f:
    old = f.read()
head = old[: old.index("\n## ") + 1]
new = head + "\n".join(body)
if check:
    sys.exit(0 if new == old else 1)
with open(doc, "w") as f:
    f.write(new)
print("wrote %s (%d flags)" % (doc, len(flags)))
