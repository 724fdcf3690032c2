#!/usr/bin/python3
"""Summarise a Tempest run (its subunit v2 stream) as Markdown.

Counts come from the stream itself (the one `tempest last --subunit` prints),
so they match `subunit-stats` and Tempest's own summary: a class whose
setUpClass fails or skips counts once, as the test "setUpClass (module.Class)".
A second table maps every listed test to what happened to it, including the
tests that never ran because their class's setUpClass failed.

Failures are matched against the expected-failures file (see README.md);
with --check the exit status is 1 when a failure is not listed there.
"""

import argparse
import collections
import datetime
import os
import re
import subprocess
import sys

import subunit
import testtools

GROUPS = ("compute", "identity", "image")


def parse_stream(path):
    """Return ({test_id: {"status", "details", "tags", "timestamps"}}, enumerated ids).

    A stream written by `tempest run --subunit` first enumerates the tests of
    each worker ("exists" events): those are collected apart and never
    counted, exactly as subunit-stats ignores them."""
    tests = {}
    enumerated = set()

    def on_test(t):
        if t["status"] == "exists":
            enumerated.add(t["id"])
            return
        tests[t["id"]] = t

    with open(path, "rb") as f:
        case = subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout")
        result = testtools.StreamToDict(on_test)
        result.startTestRun()
        try:
            case.run(result)
        finally:
            result.stopTestRun()
    return tests, enumerated


SETUP_RE = re.compile(r"^(setUpClass|tearDownClass|setUpModule|tearDownModule) \((?P<cls>[^)]+)\)$")


def class_of(test_id):
    """The dotted class path of a test id or of a setUpClass entry."""
    m = SETUP_RE.match(test_id)
    if m:
        return m.group("cls")
    return re.sub(r"\[.*\]$", "", test_id).rsplit(".", 1)[0]


def group_of(test_id):
    parts = class_of(test_id).split(".")
    if len(parts) > 2 and parts[0] == "tempest" and parts[1] == "api" and parts[2] in GROUPS:
        return parts[2]
    return "other"


def package_of(test_id):
    """tempest.api.compute.servers, tempest.api.identity.admin.v3, ... (the test
    file's directory; modules directly under the group keep their file name)."""
    parts = class_of(test_id).split(".")[:-1]  # drop the class: module path
    if len(parts) > 4:
        return ".".join(parts[:-1])
    return ".".join(parts)


def module_of(test_id):
    return class_of(test_id).rsplit(".", 1)[0]


OUTCOME = {
    "success": "passed",
    "xfail": "passed",
    "fail": "failed",
    "uxsuccess": "failed",
    "skip": "skipped",
}


def outcome(status):
    return OUTCOME.get(status, "incomplete")


def detail_text(details, *names):
    for name in names:
        content = details.get(name)
        if content is None:
            continue
        try:
            return content.as_text()
        except Exception:  # binary attachments
            try:
                return b"".join(content.iter_bytes()).decode("utf-8", "replace")
            except Exception:
                continue
    return ""


def failure_reason(details):
    """The exception that ended the test, in one line: what follows the last
    frame of the traceback (Tempest puts "Details: ..." on a second line)."""
    text = detail_text(details, "traceback", "reason")
    if not text:
        names = ", ".join(sorted(details)) or "none"
        return "(no traceback in the stream; attachments: %s)" % names
    lines = text.rstrip().splitlines()
    start = 0
    for i in range(len(lines) - 1, -1, -1):
        if re.match(r'^\s+File "', lines[i]):
            start = i + 1
            while start < len(lines) and lines[start].startswith("    "):
                start += 1  # the frame's source line
            break
    msg = " ".join(l.strip() for l in lines[start:] if l.strip())
    return shorten(msg or lines[-1], 600)


def shorten(s, n):
    s = re.sub(r"\s+", " ", s).strip()
    return s if len(s) <= n else s[: n - 1] + "…"


UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)


def signature(reason):
    """The reason with its run-specific parts (ids, names, numbers) blanked,
    to group failures that have the same cause."""
    s = UUID.sub("<id>", reason)
    s = re.sub(r"req-<id>", "<req>", s)
    s = re.sub(r"tempest-[\w-]+?-\d+", "<name>", s)
    s = re.sub(r"\b\d+(\.\d+)?\b", "<n>", s)
    s = re.sub(r"\((\w+):(setUpClass|test_\w+|tearDownClass)\)", "(<test>)", s)
    return shorten(s, 300)


def load_expected(path):
    """[(pattern, compiled regex or None, reason, line number)]"""
    entries = []
    if not path or not os.path.exists(path):
        return entries
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            pattern = parts[0]
            reason = parts[1].strip() if len(parts) > 1 else ""
            if not reason:
                sys.exit("%s:%d: an expected failure needs a reason after the pattern" % (path, n))
            try:
                rx = re.compile(pattern)
            except re.error:
                rx = None
            entries.append((pattern, rx, reason, n))
    return entries


def match_expected(test_id, entries):
    for pattern, rx, reason, n in entries:
        if pattern in test_id or (rx is not None and rx.search(test_id)):
            return pattern, reason, n
    return None


REQ_LINE = re.compile(r"Request \((\w+):(\w+)\): (\d{3}) ([A-Z]+) (\S+) [\d.]+s")


def load_requests(path):
    """{(class name, test method or setUpClass/...): [(status, method, path)]}
    from tempest.log's one INFO line per request."""
    reqs = collections.defaultdict(list)
    if not path or not os.path.exists(path):
        return reqs
    with open(path, errors="replace") as f:
        for line in f:
            if "Request (" not in line:
                continue
            m = REQ_LINE.search(line)
            if m:
                url = re.sub(r"^https?://[^/]+", "", m.group(5))
                reqs[(m.group(1), m.group(2))].append((int(m.group(3)), m.group(4), url))
    return reqs


def test_key(test_id):
    m = SETUP_RE.match(test_id)
    if m:
        return (m.group("cls").rsplit(".", 1)[-1], m.group(1))
    parts = re.sub(r"\[.*\]$", "", test_id).split(".")
    return (parts[-2], parts[-1])


def test_requests(test_id, reqs, details=None):
    """The test's requests [(status, method, path)]: from the log the stream
    carries for the test, else from tempest.log."""
    rs = []
    log = detail_text(details or {}, "pythonlogging:''")
    for line in log.splitlines():
        m = REQ_LINE.search(line)
        if m:
            rs.append((int(m.group(3)), m.group(4), re.sub(r"^https?://[^/]+", "", m.group(5))))
    return rs or reqs.get(test_key(test_id)) or []


def error_requests(rs):
    """The requests answered with an error, less the 404s on something the
    test deleted (its wait for the deletion)."""
    deleted, errs = set(), []
    for r in rs:
        if r[1] == "DELETE":
            deleted.add(r[2])
        if r[0] >= 400 and not (r[0] == 404 and r[2] in deleted):
            errs.append(r)
    return errs


def route(r):
    """A request with its ids and query blanked: "404 GET /compute/v2.1/os-services"."""
    path = r[2].split("?")[0]
    path = UUID.sub("{id}", path)
    path = re.sub(r"/(tempest-[^/]+|\d+|[^/]*%[^/]*)(?=/|$)", "/{id}", path)
    return "%d %s %s" % (r[0], r[1], path)


def requests_note(test_id, reqs, details=None):
    """The test's last request and, if another, its last error response."""
    rs = test_requests(test_id, reqs, details)
    if not rs:
        return ""
    last = rs[-1]
    fmt = lambda r: "%d %s %s" % r  # noqa: E731
    note = "last request: `%s`" % fmt(last)
    errs = error_requests(rs)
    if errs and errs[-1] is not last:
        note += "; last error response: `%s`" % fmt(errs[-1])
    return note


def md_escape(s):
    return s.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def subunit_stats(path):
    try:
        with open(path, "rb") as f:
            out = subprocess.run(["subunit-stats"], stdin=f, capture_output=True, text=True, timeout=120)
        return " ".join(l.strip() for l in out.stdout.splitlines() if l.strip())
    except Exception as e:  # noqa: BLE001 - the report must still be written
        return "(subunit-stats failed: %s)" % e


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stream", required=True, help="subunit v2 stream of the run")
    ap.add_argument("--expected", help="expected-failures file")
    ap.add_argument("--listed", help="test ids selected for the run (tempest run --list-tests)")
    ap.add_argument("--tempest-log", help="tempest.log of the run: adds each failure's last request")
    ap.add_argument("--out", help="write the Markdown report here")
    ap.add_argument("--mode", default="full")
    ap.add_argument("--regex", default="")
    ap.add_argument("--workers", default="2")
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--bound", default="")
    ap.add_argument("--tempest-status", default="")
    ap.add_argument("--timed-out", action="store_true")
    ap.add_argument("--commit", help="the Keel version that was built (default: git describe now)")
    ap.add_argument("--check", action="store_true", help="exit 1 on failures not in the expected list")
    ap.add_argument("--summary-only", action="store_true", help="print only the counts on stdout")
    args = ap.parse_args()

    tests, enumerated = parse_stream(args.stream)
    reqs = load_requests(args.tempest_log)
    expected = load_expected(args.expected)
    listed = []
    if args.listed and os.path.exists(args.listed):
        with open(args.listed) as f:
            listed = [l.strip() for l in f if l.strip().startswith("tempest.")]
    if not listed:
        listed = sorted(enumerated)

    # ---- official counts, per entry of the stream
    by_group = collections.defaultdict(collections.Counter)
    by_package = collections.defaultdict(collections.Counter)
    by_module = collections.defaultdict(collections.Counter)
    total = collections.Counter()
    failures = []  # (id, reason, expected match)
    skip_reasons = collections.Counter()
    for tid, t in sorted(tests.items()):
        o = outcome(t["status"])
        if o == "failed":
            m = match_expected(tid, expected)
            o2 = "failed (expected)" if m else "failed (unexpected)"
            failures.append((tid, failure_reason(t["details"]), m))
        else:
            o2 = None
        if o == "skipped":
            skip_reasons[shorten(detail_text(t["details"], "reason") or "(no reason)", 200)] += 1
        for counter in (by_group[group_of(tid)], by_package[package_of(tid)], by_module[module_of(tid)], total):
            counter[o] += 1
            counter["total"] += 1
            if o2:
                counter[o2] += 1

    # ---- per listed test: what happened to it
    class_setup = {}
    for tid, t in tests.items():
        m = SETUP_RE.match(tid)
        if m and m.group(1) == "setUpClass":
            class_setup[m.group("cls")] = outcome(t["status"])
    fate = collections.defaultdict(collections.Counter)
    fate_total = collections.Counter()
    not_run_by_class = collections.Counter()
    for tid in listed:
        if tid in tests:
            f = outcome(tests[tid]["status"])
        else:
            cs = class_setup.get(class_of(tid))
            if cs == "failed":
                f = "not run: setUpClass failed"
                not_run_by_class[class_of(tid)] += 1
            elif cs == "skipped":
                f = "skipped"
            else:
                f = "not run"
        fate[group_of(tid)][f] += 1
        fate[group_of(tid)]["total"] += 1
        fate_total[f] += 1
        fate_total["total"] += 1

    unexpected = [f for f in failures if not f[2]]
    expected_hit = collections.Counter(f[2][0] for f in failures if f[2])
    stats = subunit_stats(args.stream)

    raw = ("%d tests: %d passed, %d failed (%d expected, %d unexpected), %d skipped%s" % (
        total["total"], total["passed"], total["failed"], total["failed (expected)"],
        total["failed (unexpected)"], total["skipped"],
        ", %d incomplete" % total["incomplete"] if total["incomplete"] else ""))

    out = []
    w = out.append
    title = "Tempest conformance results" if args.mode == "full" else "Tempest smoke results"
    w("# %s\n" % title)
    w("Generated by `conformance/run.sh %s` on %s (Tempest %s, %s workers, run took %dm%02ds%s; "
      "tempest run exit status %s)." % (
          args.mode, datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
          tempest_version(), args.workers, args.seconds // 60, args.seconds % 60,
          ", bounded to %s" % args.bound if args.bound else "", args.tempest_status or "?"))
    w("Selection: `--regex '%s'`. Keel build: `%s`.\n" % (args.regex, args.commit or git_rev()))
    if args.timed_out:
        w("**The run was cut off by its time bound: these results are partial.**\n")
    w("**Raw counts** (entries of the run's subunit stream, as `stestr last --subunit | subunit-stats` counts them in the Tempest workspace): "
      "%s.\n" % raw)
    w("`subunit-stats`: %s\n" % stats)
    w("How to read this: see [README.md](README.md#reading-resultsmd). A class whose `setUpClass` "
      "fails counts as one failure (`setUpClass (module.Class)`) and its tests do not run; the "
      "second table shows every selected test's fate.\n")

    def row(name, c, extra=True):
        cells = [name, c["total"], c["passed"], c["failed"], c["failed (expected)"], c["failed (unexpected)"],
                 c["skipped"]]
        if total["incomplete"]:
            cells.append(c["incomplete"])
        return "| " + " | ".join(str(x) for x in cells) + " |"

    head = "| %s | entries | passed | failed | expected | unexpected | skipped |" + (
        " incomplete |" if total["incomplete"] else "")
    sep = "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if total["incomplete"] else "")

    w("## Per group\n")
    w(head % "group")
    w(sep)
    for g in GROUPS + ("other",):
        if by_group[g]["total"]:
            w(row(g, by_group[g]))
    w(row("**all**", total))
    w("")

    if listed:
        w("## Per selected test\n")
        w("What happened to each of the %d tests `tempest run --list-tests` selects "
          "(a test of a class whose setUpClass failed is \"not run\"; one skipped as a class is \"skipped\").\n" %
          len(listed))
        kinds = ["passed", "failed", "skipped", "not run: setUpClass failed", "not run", "incomplete"]
        kinds = [k for k in kinds if fate_total[k]]
        w("| group | selected | " + " | ".join(kinds) + " |")
        w("|---|---:|" + "---:|" * len(kinds))
        for g in GROUPS + ("other",):
            if fate[g]["total"]:
                w("| %s | %d | " % (g, fate[g]["total"]) + " | ".join(str(fate[g][k]) for k in kinds) + " |")
        w("| **all** | %d | " % fate_total["total"] + " | ".join(str(fate_total[k]) for k in kinds) + " |")
        w("")

    w("## Per package\n")
    w(head % "package")
    w(sep)
    for p in sorted(by_package):
        w(row("`%s`" % p, by_package[p]))
    w("")

    w("<details><summary>Per test module</summary>\n")
    w(head % "module")
    w(sep)
    for m in sorted(by_module):
        w(row("`%s`" % m, by_module[m]))
    w("\n</details>\n")

    if failures:
        causes = collections.Counter()
        for tid, reason, _ in failures:
            errs = error_requests(test_requests(tid, reqs, tests[tid]["details"]))
            causes[(signature(reason), route(errs[-1]) if errs else "")] += 1
        w("## Failures by cause\n")
        w("Failures grouped by their error (ids and numbers blanked out) and the test's last error "
          "response, most frequent first.\n")
        w("| failures | last error response | error |")
        w("|---:|---|---|")
        for (sig, rt), n in causes.most_common():
            w("| %d | %s | %s |" % (n, "`%s`" % rt if rt else "", md_escape(sig)))
        w("")

    w("## Unexpected failures (%d)\n" % len(unexpected))
    if unexpected:
        w("Not in [expected-failures.txt](expected-failures.txt): bugs, or missing features not listed yet.\n")
        for tid, reason, _ in unexpected:
            note = requests_note(tid, reqs, tests[tid]["details"])
            w("- `%s`  \n  %s%s" % (tid, md_escape(reason), "  \n  " + note if note else ""))
    else:
        w("None.")
    w("")

    exp = [f for f in failures if f[2]]
    w("## Expected failures (%d)\n" % len(exp))
    if exp:
        w("Listed in [expected-failures.txt](expected-failures.txt); the reason from the list, then the error.\n")
        by_reason = collections.defaultdict(list)
        for tid, reason, m in exp:
            by_reason[m[1]].append((tid, reason))
        for why, items in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            w("### %s (%d)\n" % (md_escape(why), len(items)))
            for tid, reason in items:
                note = requests_note(tid, reqs, tests[tid]["details"])
                w("- `%s`  \n  %s%s" % (tid, md_escape(reason), "  \n  " + note if note else ""))
            w("")
    else:
        w("None.\n")

    unused = [(p, r, n) for p, _, r, n in expected if not expected_hit[p]]
    if unused and args.mode == "full" and not args.timed_out:
        w("## Expected failures that did not fail (%d)\n" % len(unused))
        w("Entries of the list that matched no failure in this run (fixed, skipped, or not selected).\n")
        for p, r, n in unused:
            w("- line %d: `%s` — %s" % (n, p, md_escape(r)))
        w("")

    if skip_reasons:
        w("## Skips by reason\n")
        w("| skipped | reason (Tempest's) |")
        w("|---:|---|")
        for r, n in skip_reasons.most_common():
            w("| %d | %s |" % (n, md_escape(r)))
        w("")

    text = "\n".join(out) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)

    # ---- stdout
    print("Tempest %s: %s" % (args.mode, raw))
    for g in GROUPS + ("other",):
        c = by_group[g]
        if c["total"]:
            print("  %-9s passed %4d  failed %4d (unexpected %d)  skipped %4d" % (
                g, c["passed"], c["failed"], c["failed (unexpected)"], c["skipped"]))
    if listed:
        print("  selected tests: %d; not run because setUpClass failed: %d" % (
            fate_total["total"], fate_total["not run: setUpClass failed"]))
    if not args.summary_only or args.check:
        for tid, reason, _ in unexpected:
            print("UNEXPECTED FAILURE %s\n    %s" % (tid, reason))
    if args.out:
        print("report: %s" % args.out)
    if args.check and unexpected:
        print("%d failure(s) not in %s" % (len(unexpected), args.expected))
        return 1
    return 0


def tempest_version():
    try:
        from importlib.metadata import version
        return version("tempest")
    except Exception:  # noqa: BLE001
        return "?"


def git_rev():
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.run(["git", "-C", here, "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "?"
    except Exception:  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    sys.exit(main())
