# Kills a process and all its descendants. Each one is stopped before its children are looked
# for, so nothing can fork away while the tree is collected; then all are killed at once.
# Needs sh, grep and /proc. Arguments: PID EXEC_ID (what the wrapper exported as RDEV_EXEC_ID;
# a process without it is not ours and is left alone). PID "-" means that no pid was recorded:
# then every process carrying the mark is killed (the command and whatever inherited it).
root=$1
if [ "$root" = - ]; then
    case "$2" in '' | *[!A-Za-z0-9_]*) exit 0 ;; esac
    marked=" "
    # Two passes: a child forked while the first one ran is stopped by the second.
    for _ in 1 2; do
        for env in /proc/[0-9]*/environ; do
            pid=${env#/proc/}
            pid=${pid%/environ}
            case "$marked" in *" $pid "*) continue ;; esac
            if [ "$pid" != "$$" ] && grep -q "RDEV_EXEC_ID=$2" "$env" 2>/dev/null; then
                kill -STOP "$pid" 2>/dev/null && marked="$marked$pid "
            fi
        done
    done
    # shellcheck disable=SC2086 # one argument per pid
    [ "$marked" = " " ] || kill -KILL $marked 2>/dev/null
    exit 0
fi
case "$root" in '' | *[!0-9]* | 0 | 1) exit 0 ;; esac
grep -q "RDEV_EXEC_ID=$2" "/proc/$root/environ" 2>/dev/null || exit 0
kill -STOP "$root" 2>/dev/null || exit 0
# A command leading its own process group takes the whole group along, including descendants
# orphaned before the tree is collected (the fields after "(comm)" are: state ppid pgrp ...).
leader=
if read -r stat <"/proc/$root/stat"; then
    # shellcheck disable=SC2086 # split the fields
    set -- ${stat##*) }
    if [ "$3" = "$root" ]; then leader=1; fi
fi 2>/dev/null
tree=" $root "
grew=1
while [ "$grew" = 1 ]; do
    grew=0
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        case "$tree" in *" $pid "*) continue ;; esac
        ppid=
        while read -r key value _; do
            if [ "$key" = PPid: ]; then
                ppid=$value
                break
            fi
        done 2>/dev/null <"$dir/status"
        case "$tree" in
        *" $ppid "*)
            kill -STOP "$pid" 2>/dev/null
            tree="$tree$pid "
            grew=1
            ;;
        esac
    done
done
if [ -n "$leader" ]; then kill -KILL -- "-$root" 2>/dev/null; fi
# shellcheck disable=SC2086 # one argument per pid
kill -KILL $tree 2>/dev/null
exit 0
