"""The shell code the docker backend runs inside the container, and reading what it sends back.

Every command runs under :data:`WRAPPER` (its own process group, killed whole
when it ends or times out; its output capped inside the container, first and
last ``cap // 2`` bytes of each stream); files are read and written by
:data:`READ` and :data:`WRITE`, which resolve symlinks inside the container and
refuse a path that ends up outside /workspace. On the way back this module
strips the wrapper's trailer line from stderr (:func:`split_trailer`), puts the
dropped-bytes note between head and tail (:func:`head_and_tail`) and turns the
wrapper's own errors into ``PathRefused`` / ``SandboxError``
(:func:`raise_wrapper_error`).
"""

from __future__ import annotations

from pytest_agentbench.errors import PathRefused, SandboxError

# Run as ``sh -c WRAPPER sh TAG CWD HALF KEEPER argv...`` with HALF = cap // 2 and
# KEEPER the pid of the container's ``sleep infinity``.
# - CWD is entered physically and must be below /workspace (symlinks resolved).
# - The command gets its own session and process group (setsid) and the
#   wrapper's stdin. On timeout's SIGTERM, or when the command ends, that whole
#   group is SIGKILLed, and then every other process in the container but init,
#   KEEPER and the wrapper's own group (a ``setsid``/``nohup`` survivor that left
#   the group): nothing the command started survives it, into gate time least of all.
# - Its stdout and stderr go through fifos to drainers that keep the first
#   HALF bytes (head) and the last HALF + 1 (tail), and count the rest (dd):
#   a flood is drained *inside* the container and never crosses the engine.
#   The drainers ignore SIGTERM and end at EOF (killed, head and tail would
#   lose what they buffer).
# - Last, a trailer line ``TAG out=N err=M`` (bytes after the head) goes to
#   stderr, or ``TAG error=WHAT`` if the wrapper could not run the command.
WRAPPER = """\
tag=$1 cwd=$2 h=$3 keep=$4; shift 4; p=
sweep() {
  read -r w_me 2>/dev/null </proc/$$/stat; w_me=${w_me##*) }; set -- $w_me; w_me=$3; w_n=1 w_r=0
  while [ "$w_n" -gt 0 ] && [ "$w_r" -lt 50 ]; do
    w_n=0 w_r=$((w_r + 1))
    for w_d in /proc/[0-9]*; do
      w_q=${w_d#/proc/}; case "$w_q" in 1|"$keep") continue;; esac
      read -r w_s 2>/dev/null <"$w_d/stat" || continue; w_s=${w_s##*) }; set -- $w_s
      [ "$3" = "$w_me" ] || [ "$1" = Z ] || { kill -KILL "$w_q" 2>/dev/null && w_n=$((w_n + 1)); }
    done
  done
}
trap '[ -n "$p" ] && kill -KILL -"$p" 2>/dev/null' TERM
cd -P -- "$cwd" 2>/dev/null || { printf '\\n%s error=cwd-missing\\n' "$tag" >&2; exit 125; }
case "$PWD" in /workspace|/workspace/*) ;; *) printf '\\n%s error=cwd-outside\\n' "$tag" >&2; exit 125;; esac
command -v "$1" >/dev/null 2>&1 || { printf '%s: command not found\\n' "$1" >&2; exit 127; }
d=$(mktemp -d 2>/dev/null) && mkfifo "$d/o" "$d/e" || { printf '\\n%s error=no-fifos\\n' "$tag" >&2; exit 125; }
{ trap '' TERM; head -c "$h"; LC_ALL=C dd bs=65536 2>"$d/no" | tail -c "$((h + 1))"; } <"$d/o" & o=$!
{ trap '' TERM; head -c "$h"; LC_ALL=C dd bs=65536 2>"$d/ne" | tail -c "$((h + 1))"; } <"$d/e" >&2 & e=$!
exec 3<&0
setsid "$@" <&3 3<&- >"$d/o" 2>"$d/e" & p=$!
exec 3<&-
wait "$p"; rc=$?
kill -KILL -"$p" 2>/dev/null
sweep
wait "$o" "$e"
no=0 ne=0
while read -r a b _; do [ "$b" = bytes ] && no=$a; done 2>/dev/null <"$d/no"
while read -r a b _; do [ "$b" = bytes ] && ne=$a; done 2>/dev/null <"$d/ne"
rm -rf "$d"
printf '\\n%s out=%s err=%s\\n' "$tag" "$no" "$ne" >&2
exit "$rc"
"""
# $1 is /workspace/<path>, already confined syntactically; symlinks are resolved
# inside the container and the result must stay below /workspace.
_RESOLVE = 'p=$(realpath -m -- "$1") || exit 5; case "$p" in /workspace|/workspace/*) ;; *) exit 3;; esac; '
READ = _RESOLVE + '[ -e "$p" ] || exit 2; [ -d "$p" ] && exit 4; exec cat -- "$p"'
WRITE = _RESOLVE + '[ -d "$p" ] && exit 4; mkdir -p -- "$(dirname -- "$p")" && exec cat > "$p"'


def split_trailer(stderr: bytes, tag: bytes) -> tuple[bytes, dict[str, str]]:
    """Strip the wrapper's last ``\\nTAG key=value...`` line from stderr; return it parsed."""
    at = stderr.rfind(b"\n" + tag + b" ")
    if at < 0:
        return stderr, {}
    words = stderr[at + len(tag) + 2 :].decode(errors="replace").split()
    return stderr[:at], dict(w.split("=", 1) for w in words if "=" in w)


def int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def head_and_tail(data: bytes, half: int, after_head: int | None) -> tuple[bytes, bool]:
    """Keep the first and last ``half`` bytes, as the local backend does; True if the middle went."""
    if len(data) <= 2 * half:
        return data, False
    if after_head is not None:
        note = f"\n[... {half + after_head - 2 * half} bytes of output dropped ...]\n"
    else:
        note = "\n[... output dropped ...]\n"
    return data[:half] + note.encode() + data[-half:], True


def raise_wrapper_error(error: str | None, cwd: str) -> None:
    if error is None:
        return
    if error == "cwd-missing":
        raise PathRefused(f"folder {cwd!r} does not exist in the workspace")
    if error == "cwd-outside":
        raise PathRefused(f"folder {cwd!r} resolves outside the workspace (through a symlink)")
    if error == "no-fifos":
        raise SandboxError("docker sandbox: cannot create fifos in the container's /tmp (is its disk full?)")
    raise SandboxError(f"docker sandbox: the command wrapper failed ({error})")


# Prints the pid of init's only child right after the container starts: its ``sleep infinity``.
FIND_KEEPER = (
    'for d in /proc/[0-9]*; do read -r s <"$d/stat" || continue; s=${s##*) }; set -- $s; '
    '[ "$2" = 1 ] && echo "${d#/proc/}"; done; exit 0'
)
