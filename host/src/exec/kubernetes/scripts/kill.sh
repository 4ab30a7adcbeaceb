# Kills a process and all its descendants. Each one is stopped before its children are looked
# for, so nothing can fork away while the tree is collected; then all are killed at once.
# Needs only sh and /proc. Argument: PID
root=$1
kill -STOP "$root" 2>/dev/null || exit 0
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
# shellcheck disable=SC2086 # one argument per pid
kill -KILL $tree 2>/dev/null
exit 0
