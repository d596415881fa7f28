"""The safety model: a result replaces its target atomically, so a kill at
any moment leaves the old file or the new one, never a torn one; failures and
catchable signals leave no temporary file; the progress bar appears only on a
terminal, and never with --quiet."""

import os
import pty
import resource
import select
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import CLI, fail, run, sha, snapshot

MIB = 1 << 20


def big_table(path, mib):
    rows = mib * MIB // (64 * 4)
    w = np.empty((rows, 64), np.float32)
    w[:] = np.arange(64, dtype=np.float32) + 1  # every row norm is above 1
    np.save(path, w)
    return os.path.getsize(path)


def temporaries(directory):
    return [n for n in os.listdir(directory) if ".sparsenorm-" in n]


def kill_when(args, directory, final_size, fraction):
    """Starts the tool; SIGKILLs it once a temporary file holds `fraction` of
    `final_size` bytes (None: as soon as the process runs). Returns the size
    the temporary had when the kill was sent, or -1 when none existed."""
    p = subprocess.Popen([CLI, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = -1
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            temps = temporaries(directory)
            size = os.path.getsize(os.path.join(directory, temps[0])) if temps else -1
            if fraction is None or (size >= 0 and size >= fraction * final_size):
                p.kill()
                seen = size
                break
            time.sleep(0.0005)
    finally:
        p.kill()
        p.wait()
    return seen, p.returncode


@pytest.mark.parametrize("target", ["replace", "output"])
def test_sigkill_while_writing_never_tears_the_target(tmp_path, target):
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
    partial = 0
    for fraction in [None, 0.0, 0.2, 0.5, 0.8, 1.0]:
        if sha(f) != original:
            f.write_bytes(pristine.read_bytes())
        if target == "output":
            out.write_bytes(b"previous contents")
        old = sha(victim)
        seen, rc = kill_when(args, tmp_path, size, fraction)
        assert sha(victim) in (old, new), "the target was torn"
        if target == "output":
            assert sha(f) == original, "the input changed"
        if rc == -signal.SIGKILL and 0 <= seen < size:
            partial += 1
        # A killed run leaves its temporary file (SIGKILL cannot be caught),
        # named after the target; nothing else.
        for t in temporaries(tmp_path):
            assert t.startswith("." + victim.name + ".sparsenorm-")
            os.unlink(tmp_path / t)
        assert sorted(os.listdir(tmp_path)) == sorted(["ref", "t.npy"] + (["out.npy"] if target == "output" else []))
    assert partial >= 1, "no kill landed while the temporary file was being written"
    if sha(f) != original:
        f.write_bytes(pristine.read_bytes())
    run(*args)
    assert sha(victim) == new


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_catchable_signals_remove_the_temporary(tmp_path, sig):
    f = tmp_path / "t.npy"
    size = big_table(f, 128)
    original = snapshot(tmp_path)
    p = subprocess.Popen([CLI, "rows", f, "--all", "--max-norm", "1"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not temporaries(tmp_path) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0005)
    p.send_signal(sig)
    p.wait()
    if p.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert p.returncode == -sig
    assert snapshot(tmp_path) == original
    assert os.path.getsize(f) == size


def test_write_failure_removes_the_temporary(tmp_path):
    f = tmp_path / "t.npy"
    big_table(f, 8)
    before = snapshot(tmp_path)

    def limit():  # writes beyond 1 MiB fail with EFBIG instead of killing
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (MIB, MIB))

    p = subprocess.run([CLI, "rows", f, "--all", "--max-norm", "1"], capture_output=True, text=True,
                       preexec_fn=limit)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "cannot write" in p.stderr and "File too large" in p.stderr
    assert snapshot(tmp_path) == before


def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(tmp_path):
    f = tmp_path / "t.npy"
    np.save(f, np.ones((3, 3), np.float32))
    os.chmod(f, 0o600)
    old = os.umask(0o027)
    try:
        run("rows", f, "--all", "--max-norm", "1", "-o", tmp_path / "new.npy")
        run("rows", f, "--all", "--max-norm", "1")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "new.npy").st_mode & 0o777 == 0o640
    assert os.stat(f).st_mode & 0o777 == 0o600


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
