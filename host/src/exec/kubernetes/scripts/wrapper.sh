# Runs a command in a pod the way the local backend runs it in a directory, and first reports its
# pid on stdout so the gateway can kill it (and everything it started) through a second exec:
# closing the exec stream does not stop a remote process.
# Arguments: WORKSPACE [NAME=VALUE ...] -- PROGRAM [ARG ...]
printf 'rdev-pid %s\n' "$$"
cd -- "$1" || exit 126
shift
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
    export "$1"
    shift
done
shift
exec "$@"
