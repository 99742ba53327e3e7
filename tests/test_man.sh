#!/bin/sh
# The man pages: every fl_ symbol the shared library exports (nm -D), and
# every call libfaultline-umap.so exports, has a section-3 page (its own, or a .so link to its family's page, whose NAME
# line names it); every page renders without a warning, through man(1)
# (`man --warnings -l`) and groff (`groff -ww -z -man`); every section-3
# page that is not a link has an ERRORS section.
#
# Run by tests/run.sh through the wrapper $(BUILD)/tests/test_man (see the
# Makefile), which sets FL_SRC and FL_BUILD.  Prints the suite's
# PASS/FAIL/SKIP/SUMMARY lines.
NAME=test_man
src=${FL_SRC:?}
build=${FL_BUILD:?}
man=$src/man
lib=$build/libfaultline.so
umaplib=$build/libfaultline-umap.so
pass=0
fail=0

ok() {
	echo "PASS $NAME.$1"
	pass=$((pass + 1))
}
bad() {
	echo "FAIL $NAME.$1: $2"
	fail=$((fail + 1))
}

for tool in nm man groff; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "SKIP $NAME: $tool is not installed (apt-get install" \
			"binutils man-db groff-base)"
		exit 77
	fi
done
tmp=$(mktemp "${TMPDIR:-/tmp}/faultline-man.XXXXXX") || exit 2
trap 'rm -f "$tmp"' EXIT INT TERM

# The page a file stands for, in $target: itself, or the target of its
# .so.  Sets a variable rather than printing, and uses shell built-ins
# only: a fork costs milliseconds on some machines, and this runs for
# every page.
target_of() {
	first=
	read -r first <"$1" || :
	case "$first" in
	.so\ *) target=${first#.so}; target=$man/${target# } ;;
	*) target=$1 ;;
	esac
}

# ---- every exported symbol has a page that names it ----------------------
syms=$({
	nm -D --defined-only "$lib" | awk '{print $NF}' | grep '^fl_'
	nm -D --defined-only "$umaplib" | awk '{print $NF}' |
		grep -e '^umap' -e '^uunmap'
} | sed 's/@.*//' | sort -u)
if [ -z "$syms" ]; then
	bad every_symbol_has_a_page "no fl_ symbol in $lib"
else
	# One awk for all symbols: the page, the page its .so names, and
	# that page's NAME section (from .SH NAME to the next .SH).
	missing=$(echo "$syms" | awk -v man="$man" '
	function target(f,   line) {
		line = ""
		getline line <f
		close(f)
		if (line !~ /^\.so /)
			return f
		sub(/^\.so */, "", line)
		return man "/" line
	}
	function names(f, s,   line, in_name, found) {
		found = 0
		while ((getline line <f) > 0) {
			if (line ~ /^\.SH /)
				in_name = (line ~ /^\.SH NAME/)
			else if (in_name && line ~ ("(^|[^A-Za-z0-9_])" s \
						    "([^A-Za-z0-9_]|$)"))
				found = 1
		}
		close(f)
		return found
	}
	{
		f = man "/man3/" $0 ".3"
		if ((getline line <f) <= 0) {
			printf " %s(no page)", $0
			next
		}
		close(f)
		t = target(f)
		if (!names(t, $0))
			printf " %s(not in NAME of %s)", $0,
			    substr(t, length(man) + 2)
	}')
	if [ -z "$missing" ]; then
		ok every_symbol_has_a_page
	else
		bad every_symbol_has_a_page "$missing"
	fi
fi

# ---- every page renders without warnings ---------------------------------
# A .so link renders as the page it names, which is rendered itself; that
# its target exists is checked below.  Rendering each link again would
# only repeat that page's render (and take most of this test's time).
pages=$(cd "$man" && ls man1/*.1 man3/*.3 2>/dev/null)
[ -n "$pages" ] || bad pages_render "no pages in $man"
noisy=""
for p in $pages; do
	target_of "$man/$p"
	[ "$target" = "$man/$p" ] || continue
	# man resolves .so links from the top of the manual tree.
	(cd "$man" && MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l \
		"$p") >/dev/null 2>"$tmp" || echo "man failed" >>"$tmp"
	groff -ww -z -man -s -I "$man" -I "$man/.." "$man/$p" 2>>"$tmp" ||
		echo "groff failed" >>"$tmp"
	if [ -s "$tmp" ]; then
		sed "s|^|  $p: |" "$tmp"
		noisy="$noisy $p"
	fi
done
[ -z "$noisy" ] && [ -n "$pages" ] && ok pages_render ||
	bad pages_render "warnings from$noisy"

# ---- section-3 pages have ERRORS, links point at pages -------------------
noerr=""
for p in "$man"/man3/*.3; do
	target_of "$p"
	if [ "$target" != "$p" ]; then
		[ -f "$target" ] || noerr="$noerr ${p#"$man"/}(link to missing ${target#"$man"/})"
		continue
	fi
	has_errors=0
	while read -r line; do
		case "$line" in .SH\ ERRORS*) has_errors=1 ;; esac
	done <"$p"
	[ "$has_errors" = 1 ] || noerr="$noerr ${p#"$man"/}"
done
[ -z "$noerr" ] && ok errors_sections || bad errors_sections "$noerr"

echo "SUMMARY $NAME: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
