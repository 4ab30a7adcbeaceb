# Runs a command in a pod the way the local backend runs it in a directory, and first reports its
# pid on stdout so the gateway can kill it (and everything it started) through a second exec:
# closing the exec stream does not stop a remote process.
# RDEV_EXEC_ID marks the process, so that the kill can tell it from an unrelated process that
# reused its pid (after a gateway restart, say).
# Arguments: EXEC_ID WORKSPACE [NAME=VALUE ...] -- PROGRAM [ARG ...]
printf 'rdev-pid %s\n' "$$"
export RDEV_EXEC_ID="$1"
cd -- "$2" || exit 126
shift 2
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
    export "$1"
    shift
done
shift
exec "$@"
