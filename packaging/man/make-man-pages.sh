#!/bin/bash
# Writes kbatch's man pages with help2man from the built binaries, gzipped as Debian installs them:
#   kbatch.1.gz           from `kbatch --help`, plus packaging/man/kbatch.h2m (files, environment,
#                         exit status, see also)
#   kbatch-COMMAND.1.gz   one per subcommand that `kbatch help` lists, from `kbatch COMMAND --help`
#   kbatch-submit.1.gz    from `kbatch-submit --help`, plus packaging/man/kbatch-submit.h2m
# The subcommand list comes from the binary, so a command added later gets its page without an edit
# here. help2man runs the binary it documents: these are our own freshly built executables.
#   make-man-pages.sh OUT_DIR KBATCH KBATCH_SUBMIT
set -euo pipefail
out=${1:?usage: make-man-pages.sh OUT_DIR KBATCH KBATCH_SUBMIT}
kbatch=${2:?usage: make-man-pages.sh OUT_DIR KBATCH KBATCH_SUBMIT}
kbatch_submit=${3:?usage: make-man-pages.sh OUT_DIR KBATCH KBATCH_SUBMIT}
here=$(cd "$(dirname "$0")" && pwd)
readonly kManual="kbatch manual"
readonly kVersion=$("$kbatch" --version | awk '{ print $2 }')
readonly kSource="kbatch $kVersion"

die() { echo "make-man-pages: $*" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"

# help2man -N: no pointer to a Texinfo manual (there is none). --no-discard-stderr is not used:
# kbatch prints its help on stdout.
writePage() {
  local page=$1 name_line=$2
  shift 2
  help2man -N --section=1 --manual="$kManual" --source="$kSource" --name="$name_line" \
    --output="$out/$page.1" "$@" || die "help2man failed for $page"
  [ -s "$out/$page.1" ] || die "help2man wrote an empty $page.1"
  gzip -n -9 -f "$out/$page.1"
}

writePage kbatch "run batch jobs in containers through the site's existing batch system" \
  --include="$here/kbatch.h2m" "$kbatch"
writePage kbatch-submit "the submit path of kbatch (parse, rewrite, submit-filter, qsub) with few libraries" \
  --version-string="kbatch-submit $kVersion" --include="$here/kbatch-submit.h2m" "$kbatch_submit"

# Subcommands: the indented lines under "Subcommands:" in the top-level help, "NAME  description".
mapfile -t subcommands < <("$kbatch" help | awk '/^Subcommands:/ { on = 1; next }
  on && /^  [a-z]/ { print $1; next } on && !/^ / { on = 0 }')
[ ${#subcommands[@]} -gt 0 ] || die "'$kbatch help' listed no subcommands"
for command in "${subcommands[@]}"; do
  [ "$command" = help ] && continue
  # The one-line summary, up to a usage example (": kbatch ...") or the end of its first sentence,
  # with a lower-case first letter as man pages' NAME lines have.
  description=$("$kbatch" help | awk -v c="$command" '$1 == c { $1 = ""; sub(/^ +/, ""); print; exit }' |
    sed -e 's/: kbatch .*//' -e 's/\. .*//' -e 's/\.$//' -e 's/^\([A-Z]\)\([a-z]\)/\L\1\E\2/')
  # help2man runs "PROGRAM OPTION" through the shell, so the options may carry the subcommand.
  # Its page name is kbatch-COMMAND, as git and podman name theirs; help2man takes the page's
  # title from the program name in the version string.
  wrapper=$out/kbatch-$command
  printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$kbatch" "$command" >"$wrapper"
  chmod +x "$wrapper"
  writePage "kbatch-$command" "$description" \
    --version-string="kbatch-$command $kVersion" --include="$here/subcommand.h2m" "$wrapper"
  rm -f "$wrapper"
done
echo "make-man-pages: $(find "$out" -name '*.1.gz' | wc -l) pages in $out"
