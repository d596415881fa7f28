"""The safety model: a result replaces its target atomically, so a kill at
any moment leaves the old file or the new one, never a torn one; a kill
leaves no debris that the next run does not remove (and, while the new file
has no name, none at all); a concurrent run's temporary is never taken;
failures and catchable signals leave no temporary file; the progress bar
appears only on a terminal, and never with --quiet.

Both ways of writing are tested: the default, where the new file is created
without a name (O_TMPFILE), and the named temporary file that file systems
without O_TMPFILE get, forced here with SPARSENORM_NO_O_TMPFILE=1. Kills at
exact moments use SPARSENORM_TEST_STOP_AT=POINT, which makes the tool stop
itself (SIGSTOP) at POINT (docs/CLI.md, "Safety")."""

import fcntl
import os
import pty
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import time

import numpy as np
import pytest

from conftest import CLI, fail, run, sha, snapshot

MIB = 1 << 20

# The environment of each way of writing.
MODES = {"unnamed": {}, "named": {"SPARSENORM_NO_O_TMPFILE": "1"}}

# The stop points of SPARSENORM_TEST_STOP_AT each way passes, in order.
# (Besides these, cleanup: the cleanup has opened a candidate, not yet
# locked it.) named: the file exists under its temporary name, not locked;
# created: the file exists (and is locked), nothing written; write: the
# first 8 MiB are written; written: all written, owner and mode set,
# flushed, not renamed (and, unnamed, still without a name); linked: the
# unnamed file has its temporary name; renamed: the target is replaced,
# the directory not yet flushed.
POINTS = {"unnamed": ["created", "write", "written", "linked", "renamed"],
          "named": ["named", "created", "write", "written", "renamed"]}
# The points at which the new file has a temporary name.
NAMED_AT = {"unnamed": {"linked"}, "named": {"named", "created", "write", "written"}}


def big_table(path, mib):
    rows = mib * MIB // (64 * 4)
    w = np.empty((rows, 64), np.float32)
    w[:] = np.arange(64, dtype=np.float32) + 1  # every row norm is above 1
    np.save(path, w)
    return os.path.getsize(path)


def temporaries(directory):
    return sorted(n for n in os.listdir(directory) if ".sparsenorm-" in n)


def environment(mode, stop_at=None):
    env = dict(os.environ, **MODES[mode])
    env.pop("SPARSENORM_PROGRESS_DELAY_MS", None)
    if stop_at:
        env["SPARSENORM_TEST_STOP_AT"] = stop_at
    return env


def start(args, mode, stop_at=None):
    return subprocess.Popen([CLI, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=environment(mode, stop_at))


def wait_stopped(p, timeout=60):
    """Waits until the tool has stopped itself at its SPARSENORM_TEST_STOP_AT
    point (without reaping it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = os.waitid(os.P_PID, p.pid, os.WSTOPPED | os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            if info.si_code != os.CLD_STOPPED:
                _, err = p.communicate()
                pytest.fail(f"the tool ended (status {p.returncode}) before its stop point: {err!r}")
            return
        time.sleep(0.001)
    p.kill()
    p.wait()
    pytest.fail("the tool did not reach its stop point")


def resume(p):
    """Lets a stopped tool go on to its end; returns its exit status and
    stderr."""
    p.send_signal(signal.SIGCONT)
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        pytest.fail("the tool did not finish (stopped again?)")
    return p.returncode, err.decode(errors="replace")


def output_file(pid, directory, exclude=()):
    """(name, size) of the new file the process `pid` is writing in
    `directory`, read through /proc/PID/fd: a temporary name, or '#INODE
    (deleted)' for a file without a name. None when there is none."""
    directory = os.path.realpath(directory)
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return None
    for fd in fds:
        try:
            link = os.readlink(f"{fd_dir}/{fd}")
            name = os.path.basename(link)
            if os.path.dirname(link) != directory or name in exclude:
                continue
            if not (re.fullmatch(r"#\d+ \(deleted\)", name) or ".sparsenorm-" in name):
                continue
            st = os.stat(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            return name, st.st_size
    return None


def kill_when(args, directory, final_size, fraction, mode):
    """Starts the tool; SIGKILLs it once its new file holds `fraction` of
    `final_size` bytes (None: as soon as the process runs). Returns the size
    the new file had when the kill was sent, or -1 when it had none, and the
    exit status. The file is watched through /proc/PID/fd, so a file without
    a name is seen too, and stale temporaries in `directory` are not."""
    stale = set(temporaries(directory))
    p = subprocess.Popen([CLI, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=environment(mode))
    seen = -1
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            found = output_file(p.pid, directory, stale)
            size = found[1] if found else -1
            if fraction is None or (size >= 0 and size >= fraction * final_size):
                p.kill()
                seen = size
                break
            time.sleep(0.0005)
    finally:
        p.kill()
        p.wait()
    return seen, p.returncode


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", ["replace", "output"])
def test_sigkill_while_writing_never_tears_the_target(tmp_path, target, mode):
    f = tmp_path / "t.npy"
    size = big_table(f, 128)
    original = sha(f)
    (tmp_path / "ref").mkdir()
    pristine = tmp_path / "ref" / "pristine.npy"
    pristine.write_bytes(f.read_bytes())
    # The result of an uninterrupted run.
    ref = tmp_path / "ref" / "t.npy"
    ref.write_bytes(f.read_bytes())
    run("rows", ref, "--all", "--max-norm", "1")
    new = sha(ref)
    assert new != original

    out = tmp_path / "out.npy"
    victim = out if target == "output" else f
    args = ["rows", f, "--all", "--max-norm", "1"] + (["-o", out] if target == "output" else [])
    files = sorted(["ref", "t.npy"] + (["out.npy"] if target == "output" else []))
    partial = 0
    for fraction in [None, 0.0, 0.2, 0.5, 0.8, 1.0]:
        if sha(f) != original:
            f.write_bytes(pristine.read_bytes())
        if target == "output":
            out.write_bytes(b"previous contents")
        old = sha(victim)
        before = temporaries(tmp_path)
        seen, rc = kill_when(args, tmp_path, size, fraction, mode)
        assert sha(victim) in (old, new), "the target was torn"
        if target == "output":
            assert sha(f) == original, "the input changed"
        killed_while_writing = rc == -signal.SIGKILL and 0 <= seen < size
        partial += killed_while_writing
        # What a killed run may leave: a temporary named after the target
        # (the next run removes it, see below), and, when the file had no
        # name yet, nothing new at all.
        left = temporaries(tmp_path)
        assert all(t.startswith("." + victim.name + ".sparsenorm-") for t in left)
        if mode == "unnamed" and killed_while_writing:
            assert set(left) <= set(before), "a kill during an unnamed write left a file"
        assert sorted(set(os.listdir(tmp_path)) - set(left)) == files
    assert partial >= 1, "no kill landed while the new file was being written"
    if sha(f) != original:
        f.write_bytes(pristine.read_bytes())
    run(*args, env=MODES[mode])
    assert sha(victim) == new
    assert temporaries(tmp_path) == [], "the next run left stale temporaries"
    assert sorted(os.listdir(tmp_path)) == files


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A 24 MiB table (three 8 MiB write chunks), and the digests of its
    results with --max-norm 1 and --max-norm 0.5."""
    d = tmp_path_factory.mktemp("table")
    f = d / "t.npy"
    big_table(f, 24)
    results = {}
    for t in ["1", "0.5"]:
        run("rows", f, "--all", "--max-norm", t, "-o", d / f"r{t}.npy")
        results[t] = sha(d / f"r{t}.npy")
    assert results["1"] != results["0.5"]
    return f, results


def setup_output(tmp_path, table):
    f = tmp_path / "t.npy"
    shutil.copyfile(table[0], f)
    out = tmp_path / "out.npy"
    out.write_bytes(b"previous contents")
    return f, out


@pytest.mark.parametrize("mode,point", [(m, p) for m in MODES for p in POINTS[m]])
def test_sigkill_at_each_step_leaves_no_debris_after_the_next_run(tmp_path, table, mode, point):
    f, out = setup_output(tmp_path, table)
    old, original, new = sha(out), sha(f), table[1]["1"]
    args = ["rows", f, "--all", "--max-norm", "1", "-o", out]
    p = start(args, mode, point)
    wait_stopped(p)
    temps = temporaries(tmp_path)
    assert len(temps) == (1 if point in NAMED_AT[mode] else 0)
    assert all(t.startswith(".out.npy.sparsenorm-") and len(t) == len(".out.npy.sparsenorm-") + 16
               for t in temps)
    if point != "renamed":
        # The process really writes a file created without a name (its
        # descriptor keeps showing that, even once linked), or a named one.
        name, _ = output_file(p.pid, tmp_path)
        assert name in temps if mode == "named" else re.fullmatch(r"#\d+ \(deleted\)", name)
    p.kill()
    p.wait()
    assert sha(out) == (new if point == "renamed" else old)
    assert sha(f) == original
    # SIGKILL removes nothing: what had a name keeps it, what had none is gone.
    assert temporaries(tmp_path) == temps
    run(*args, env=MODES[mode])
    assert sha(out) == new
    assert sorted(os.listdir(tmp_path)) == ["out.npy", "t.npy"]


@pytest.mark.parametrize("mode,point", [("unnamed", "linked"), ("named", "created"),
                                        ("named", "write"), ("named", "written")])
def test_a_concurrent_runs_temporary_is_never_taken(tmp_path, table, mode, point):
    f, out = setup_output(tmp_path, table)
    args = ["rows", f, "--all", "--max-norm", "1", "-o", out]
    a = start(args, mode, point)
    wait_stopped(a)
    (temp,) = temporaries(tmp_path)
    inode = os.stat(tmp_path / temp).st_ino
    # Another run over the same target, to the end, while the first is stopped.
    run("rows", f, "--all", "--max-norm", "0.5", "-o", out, env=MODES[mode])
    assert sha(out) == table[1]["0.5"]
    assert temporaries(tmp_path) == [temp] and os.stat(tmp_path / temp).st_ino == inode
    rc, err = resume(a)
    assert rc == 0, err
    assert sha(out) == table[1]["1"]  # the last rename wins
    assert sorted(os.listdir(tmp_path)) == ["out.npy", "t.npy"]


def test_a_temporary_taken_before_its_lock_is_replaced_by_another(tmp_path, table):
    """The named path creates its file before it can lock it; a concurrent
    run's cleanup may take the file in that moment. The writer notices (its
    name no longer refers to its file) and starts over under a new name,
    before writing anything."""
    f, out = setup_output(tmp_path, table)
    a = start(["rows", f, "--all", "--max-norm", "1", "-o", out], "named", "named")
    wait_stopped(a)
    (taken,) = temporaries(tmp_path)
    run("rows", f, "--all", "--max-norm", "0.5", "-o", out)
    assert temporaries(tmp_path) == []  # it looked stale: nobody held its lock
    # The writer goes on, finds its name gone and stops at the same point
    # again, with a new name.
    a.send_signal(signal.SIGCONT)
    wait_stopped(a)
    (again,) = temporaries(tmp_path)
    assert again != taken
    rc, err = resume(a)
    assert rc == 0, err
    assert sha(out) == table[1]["1"]
    assert sorted(os.listdir(tmp_path)) == ["out.npy", "t.npy"]


@pytest.mark.parametrize("mode", MODES)
def test_the_cleanup_takes_only_unlocked_temporaries_of_its_target(tmp_path, mode):
    f = tmp_path / "t.npy"
    np.save(f, np.full((8, 8), 3.0, np.float32))
    outside = tmp_path / "outside"
    outside.write_bytes(b"not ours")
    stale = [".t.npy.sparsenorm-0123456789abcdef", ".t.npy.sparsenorm-ffffffffffffffff"]
    kept = [".t.npy.sparsenorm-0123456789ABCDEF",   # not our spelling
            ".t.npy.sparsenorm-0123456789abcde",    # too short
            ".t.npy.sparsenorm-0123456789abcdef0",  # too long
            ".u.npy.sparsenorm-0123456789abcdef",   # another target's
            ".t.npy.sparsenorm-1111111111111111",   # held by a live writer
            ".t.npy.sparsenorm-2222222222222222",   # a symbolic link
            ".t.npy.sparsenorm-3333333333333333",   # a FIFO (never opened)
            ".t.npy.sparsenorm-4444444444444444"]   # a directory
    for n in stale + kept[:5]:
        (tmp_path / n).write_bytes(b"x" * 100)
    os.symlink(outside, tmp_path / kept[5])
    os.mkfifo(tmp_path / kept[6])
    os.mkdir(tmp_path / kept[7])
    with open(tmp_path / kept[4], "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        run("rows", f, "--all", "--max-norm", "1", env=MODES[mode], timeout=60)
        assert temporaries(tmp_path) == sorted(kept)
        assert outside.read_bytes() == b"not ours"
    # Once its writer is gone, the next run takes it.
    run("rows", f, "--all", "--max-norm", "1", env=MODES[mode], timeout=60)
    assert temporaries(tmp_path) == sorted(kept[:4] + kept[5:])


def test_the_cleanup_removes_only_the_file_it_locked(tmp_path):
    """Between the cleanup's open of a temporary and its lock, the name may
    come to refer to another file; the cleanup then removes nothing."""
    f = tmp_path / "t.npy"
    np.save(f, np.full((8, 8), 3.0, np.float32))
    name = tmp_path / ".t.npy.sparsenorm-0123456789abcdef"
    name.write_bytes(b"stale")
    p = start(["rows", f, "--all", "--max-norm", "1"], "unnamed", "cleanup")
    wait_stopped(p)  # it has opened the stale file
    os.rename(name, tmp_path / "moved")
    name.write_bytes(b"live")  # another file under the same name, held by its writer
    with open(name, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        rc, err = resume(p)
        assert rc == 0, err
        assert name.read_bytes() == b"live"
    assert (tmp_path / "moved").read_bytes() == b"stale"


@pytest.mark.parametrize("mode,point", [("unnamed", "write"), ("unnamed", "linked"),
                                        ("named", "write"), ("named", "written")])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_catchable_signals_remove_the_temporary(tmp_path, table, sig, mode, point):
    f = tmp_path / "t.npy"
    shutil.copyfile(table[0], f)
    original = sha(f)
    p = start(["rows", f, "--all", "--max-norm", "1"], mode, point)
    wait_stopped(p)
    p.send_signal(sig)  # pending until the process goes on
    rc, err = resume(p)
    assert rc == -sig, err
    assert os.listdir(tmp_path) == ["t.npy"]
    # The signal is the process's: on SIGCONT any of its threads (OpenMP's
    # too) may take it, while the main thread goes on. At "linked" and
    # "written" the main thread's next step is the rename, so the target
    # may be replaced before the handler ends the process; either way it is
    # whole and no temporary is left.
    expected = {original} if point == "write" else {original, table[1]["1"]}
    assert sha(f) in expected


@pytest.mark.parametrize("mode", MODES)
def test_write_failure_removes_the_temporary(tmp_path, mode):
    f = tmp_path / "t.npy"
    big_table(f, 8)
    before = snapshot(tmp_path)

    def limit():  # writes beyond 1 MiB fail with EFBIG instead of killing
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (MIB, MIB))

    p = subprocess.run([CLI, "rows", f, "--all", "--max-norm", "1"], capture_output=True, text=True,
                       preexec_fn=limit, env=environment(mode))
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "cannot write" in p.stderr and "File too large" in p.stderr
    # The message names the file: the target, or the temporary beside it.
    assert str(f if mode == "unnamed" else tmp_path / ".t.npy.sparsenorm-") in p.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("mode", MODES)
def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(tmp_path, mode):
    f = tmp_path / "t.npy"
    np.save(f, np.ones((3, 3), np.float32))
    os.chmod(f, 0o600)
    old = os.umask(0o027)
    try:
        run("rows", f, "--all", "--max-norm", "1", "-o", tmp_path / "new.npy", env=MODES[mode])
        run("rows", f, "--all", "--max-norm", "1", env=MODES[mode])
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "new.npy").st_mode & 0o777 == 0o640
    assert os.stat(f).st_mode & 0o777 == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="only a privileged process may give a file away")
@pytest.mark.parametrize("mode", MODES)
def test_replaced_files_keep_their_owner(tmp_path, mode):
    f = tmp_path / "t.npy"
    np.save(f, np.ones((3, 3), np.float32))
    os.chown(f, 4321, 8765)
    os.chmod(f, 0o640)
    run("rows", f, "--all", "--max-norm", "1", env=MODES[mode])
    st = os.stat(f)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (4321, 8765, 0o640)


def test_in_place_keeps_the_inode_and_refuses_a_locked_file(tmp_path):
    import fcntl
    f = tmp_path / "t.npy"
    np.save(f, np.full((4, 4), 2.0, np.float32))
    with open(f, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        line = fail("rows", f, "--all", "--max-norm", "1", "--in-place")
        assert "locked by another process" in line
    assert np.array_equal(np.load(f), np.full((4, 4), 2.0, np.float32))


def run_on_terminal(args, env):
    """Runs the tool with stderr on a pseudo-terminal; returns what it wrote there."""
    master, slave = pty.openpty()
    p = subprocess.Popen([CLI, *map(str, args)], stdout=subprocess.DEVNULL, stderr=slave,
                         env=dict(os.environ, **env))
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    p.wait()
    os.close(master)
    assert p.returncode == 0
    return out.decode(errors="replace")


def test_progress_bar_only_on_a_terminal_and_not_with_quiet(tmp_path):
    f = tmp_path / "t.npy"
    big_table(f, 32)
    env = {"SPARSENORM_PROGRESS_DELAY_MS": "0"}
    shown = run_on_terminal(["rows", f, "--all", "--max-norm", "1"], env)
    assert "writing" in shown and "100%" in shown and "[####" in shown
    assert run_on_terminal(["--quiet", "rows", f, "--all", "--max-norm", "1"], env) == ""
    assert run_on_terminal(["rows", f, "--all", "--max-norm", "1", "-q"], env) == ""
    # Not a terminal: nothing, whatever the delay.
    p = run("rows", f, "--all", "--max-norm", "1", env=env)
    assert p.stderr == ""
    # A run shorter than the default one-second delay draws nothing.
    small = tmp_path / "s.npy"
    np.save(small, np.ones((10, 4), np.float32))
    assert run_on_terminal(["rows", small, "--all", "--max-norm", "1"], {}) == ""
