# Claude configuration items of a workspace, with the local backend's rules: never through a
# symbolic link, writes staged and renamed into place.
# Arguments: OP WORKSPACE KIND [NAME [SIZE]]; OP is list, read, write (SIZE bytes on stdin) or
# delete. Exit status: 0 done, 3 unsafe layout, 4 no such item, 5 no such workspace.
op=$1 workspace=$2 kind=$3 name=$4
cd -- "$workspace" 2>/dev/null || {
    echo "workspace $workspace does not exist" >&2
    exit 5
}
dir=".claude/$kind"
file="$dir/$name.md"
for path in .claude "$dir" ${name:+"$file"}; do
    if [ -L "$path" ]; then
        echo "${path##*/} is a symbolic link" >&2
        exit 3
    fi
done
case "$op" in
list)
    [ -d "$dir" ] || exit 0
    for f in "$dir"/*.md; do
        if [ ! -f "$f" ] || [ -L "$f" ]; then continue; fi
        size=$(wc -c <"$f") || continue
        mtime=$(stat -c %Y -- "$f" 2>/dev/null) || mtime=-
        # shellcheck disable=SC2086 # wc pads the size with blanks on some systems
        printf '%s %s %s\n' $size "$mtime" "${f##*/}"
    done
    ;;
read)
    [ -f "$file" ] || exit 4
    exec cat -- "$file"
    ;;
write)
    mkdir -p -- "$dir" || exit 1
    if [ -e "$file" ]; then created=0; else created=1; fi
    staging="$dir/.$name.md.tmp"
    head -c "$5" >"$staging" || exit 1
    if [ "$(wc -c <"$staging")" -ne "$5" ]; then
        rm -f -- "$staging"
        echo "the content arrived incomplete" >&2
        exit 1
    fi
    mv -f -- "$staging" "$file" || exit 1
    echo "$created"
    ;;
delete)
    [ -f "$file" ] || exit 4
    rm -f -- "$file"
    ;;
*)
    exit 2
    ;;
esac
