#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Count the tests of one `meson test` run from its testlog.txt.

Prints "PASSED FAILED". A test program that printed a Criterion synthesis
line ("Synthesis: Tested: N | Passing: N | Failing: N | Crashing: N")
counts its tests; if the program itself then failed (a sanitizer report at
exit, say) with no failing test, that counts as one more failure. A program
with no synthesis line (it crashed before, or timed out) counts as one test
that passed only if meson says it did. A program that exited 77 (meson's
SKIP: the gpu suite on a machine without a GPU) is neither.
"""
import re
import sys

SYNTH = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")
START = re.compile(r"^=+ \d+/\d+ =+$")

def main(path):
    passed = failed = 0
    blocks, cur = [], None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if START.match(line):
                cur = {"result": None, "synth": None}
                blocks.append(cur)
            elif cur is not None:
                if line.startswith("result:") and cur["result"] is None:
                    cur["result"] = line.split(":", 1)[1].strip()
                m = SYNTH.search(line)
                if m:
                    cur["synth"] = tuple(int(x) for x in m.groups())
    for b in blocks:
        ok = b["result"] == "exit status 0"
        if b["result"] == "exit status 77" and not b["synth"]:
            continue
        if b["synth"]:
            # Criterion counts a crashed test under Failing too: Failing is the total.
            _, p, fl, cr = b["synth"]
            passed += p
            failed += max(fl, cr)
            if not ok and max(fl, cr) == 0:
                failed += 1
        elif ok:
            passed += 1
        else:
            failed += 1
    print(passed, failed)

if __name__ == "__main__":
    main(sys.argv[1])
