#!/bin/sh
# What a packager does: `make install DESTDIR=$tmp PREFIX=/usr`, then check
# the staged tree: the libraries' sonames and versioned files, their
# exports, the man pages, and programs built against it with pkg-config
# (PKG_CONFIG_SYSROOT_DIR): examples/hello.c linked with the shared library
# and statically (which needs faultline.pc's Libs.private), and the UMap
# test program against the installed <umap/umap.h>.  Each is run.
#
# Run by tests/run.sh through the wrapper $(BUILD)/tests/test_install (see
# the Makefile), which sets FL_SRC, FL_BUILD, FL_CC, FL_CFLAGS, FL_SANFLAGS
# and FL_NO (the FL_NO_* settings): the build to install and how it was
# made.  Prints the
# suite's PASS/FAIL/SKIP/SUMMARY lines.
NAME=test_install
src=${FL_SRC:?}
build=${FL_BUILD:?}
cc=${FL_CC:-cc}
san=${FL_SANFLAGS:-}
pass=0
fail=0
skip=0
tmp=$(mktemp -d /var/tmp/faultline-install.XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
root=$tmp/root
lib=$root/usr/lib

ok() {
	echo "PASS $NAME.$1"
	pass=$((pass + 1))
}
bad() {
	echo "FAIL $NAME.$1: $2"
	fail=$((fail + 1))
}
finish() {
	echo "SUMMARY $NAME: $pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}
# The soname a library file names, or NEEDED entries (readelf -d).
dyn() { readelf -d "$2" 2>/dev/null | sed -n "s/.*($1).*\[\(.*\)\]/\1/p"; }

# ---- install ---------------------------------------------------------------
if env -u MAKEFLAGS -u MAKELEVEL make -C "$src" --no-print-directory \
	BUILD="$build" CC="$cc" CFLAGS="$FL_CFLAGS" SANFLAGS="$san" \
	${FL_NO:-} DESTDIR="$root" PREFIX=/usr install >"$tmp/log" 2>&1; then
	ok make_install
else
	sed 's/^/  /' "$tmp/log"
	bad make_install "make install DESTDIR=... PREFIX=/usr failed"
	finish
fi

version=$(sed -n 's/^#define FAULTLINE_VERSION "\(.*\)"/\1/p' \
	"$src/include/faultline.h")

# ---- the libraries: versioned file, soname link, development link --------
layout_ok=1
for l in libfaultline libfaultline-umap; do
	real=$lib/$l.so.$version
	if [ ! -f "$real" ] || [ -L "$real" ]; then
		bad layout "$l.so.$version is not a regular file"
		layout_ok=0
		continue
	fi
	[ "$(readlink "$lib/$l.so.0")" = "$l.so.$version" ] ||
		{ bad layout "$l.so.0 does not link to $l.so.$version"; layout_ok=0; }
	[ "$(readlink "$lib/$l.so")" = "$l.so.0" ] ||
		{ bad layout "$l.so does not link to $l.so.0"; layout_ok=0; }
	[ "$(dyn SONAME "$real")" = "$l.so.0" ] ||
		{ bad layout "$l.so.$version has soname '$(dyn SONAME "$real")'"; layout_ok=0; }
done
dyn NEEDED "$lib/libfaultline-umap.so.$version" | grep -qx libfaultline.so.0 ||
	{ bad layout "libfaultline-umap does not need libfaultline.so.0"; layout_ok=0; }
for f in include/faultline.h include/umap/umap.h bin/faultline \
	lib/libfaultline.a lib/pkgconfig/faultline.pc \
	lib/pkgconfig/faultline-umap.pc share/man/man1/faultline.1 \
	share/man/man3/fl_mmap.3; do
	[ -f "$root/usr/$f" ] || { bad layout "usr/$f not installed"; layout_ok=0; }
done
[ "$layout_ok" -eq 1 ] && ok layout

# ---- exports: faultline's fl_ API, and UMap's API -------------------------
other=$(nm -D --defined-only "$lib/libfaultline.so.$version" |
	awk '{print $NF}' | grep -v -e '^fl_' -e '^FAULTLINE_')
[ -z "$other" ] && ok exports_faultline ||
	bad exports_faultline "exports $(echo $other)"
other=$(nm -D --defined-only "$lib/libfaultline-umap.so.$version" |
	awk '{print $NF}' | sed 's/@.*//' |
	grep -v -x -e 'umap' -e 'umap_ex' -e 'uunmap' -e 'umap_flush' \
		-e 'umap_prefetch' -e 'umap_fetch_and_pin' \
		-e 'umap_has_write_support' -e 'umapcfg_[gs]et_[a-z_]*' \
		-e 'FAULTLINE_UMAP_[0-9.]*')
[ -z "$other" ] && ok exports_umap || bad exports_umap "exports $(echo $other)"

# ---- man fl_mmap finds the installed page --------------------------------
page=$(MANPATH=$root/usr/share/man man -w fl_mmap 2>/dev/null)
[ "$page" = "$root/usr/share/man/man3/fl_mmap.3" ] && ok man_path ||
	bad man_path "man -w fl_mmap gave '$page'"

# ---- build against the staged tree with pkg-config ------------------------
pc() {
	PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_LIBDIR=$lib/pkgconfig \
		PKG_CONFIG_PATH= pkg-config "$@"
}
cflags=$(pc --cflags faultline) && libs=$(pc --libs faultline) &&
	slibs=$(pc --static --libs faultline) &&
	ulibs=$(pc --cflags --libs faultline-umap) ||
	{ bad pkg_config "pkg-config failed"; finish; }
case " $cflags " in *" -I$root/usr/include "*) ok pkg_config ;;
*) bad pkg_config "cflags '$cflags' do not name the staged tree" ;; esac
# The private libraries a static link needs are those the build linked.
want=$(env -u MAKEFLAGS -u MAKELEVEL make -s -C "$src" --no-print-directory \
	BUILD="$build" ${FL_NO:-} \
	--eval 'print-libs-private: ; @echo $(LIBS_PRIVATE)' print-libs-private \
	2>/dev/null)
lacking=""
for l in $want; do
	case " $slibs " in *" $l "*) ;; *) lacking="$lacking $l" ;; esac
done
[ -z "$lacking" ] && ok libs_private ||
	bad libs_private "pkg-config --static --libs lacks$lacking"

# Builds a program: name, then the compiler's arguments.
build_prog() {
	n=$1
	shift
	# shellcheck disable=SC2086
	if $cc $san "$@" -o "$tmp/$n" >"$tmp/cc.log" 2>&1; then
		return 0
	fi
	sed 's/^/  /' "$tmp/cc.log"
	bad "build_$n" "$cc could not build it against the staged tree"
	return 1
}

# Runs hello on a fresh data file: byte 0 'A' must become '@'.
run_hello() {
	n=$1
	printf 'A%4095s' x >"$tmp/data.bin"
	out=$(LD_LIBRARY_PATH=$lib timeout 60 "$tmp/$n" "$tmp/data.bin" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && [ "$(head -c 1 "$tmp/data.bin")" = "@" ] &&
		echo "$out" | grep -q '^first byte: 65$'; then
		ok "run_$n"
	elif echo "$out" | grep -q 'fl_engine_create: Operation not permitted'; then
		echo "SKIP $NAME.run_$n: userfaultfd not permitted"
		skip=$((skip + 1))
	else
		echo "$out" | sed 's/^/  /'
		bad "run_$n" "exit $rc"
	fi
}

# shellcheck disable=SC2086
if build_prog hello "$src/examples/hello.c" $cflags $libs; then
	if dyn NEEDED "$tmp/hello" | grep -qx libfaultline.so.0; then
		ok build_hello
		run_hello hello
	else
		bad build_hello "hello does not need libfaultline.so.0"
	fi
fi
# Static: the archive, plus Libs.private.
static=$(echo "$slibs" | sed 's/-lfaultline\b/-Wl,-Bstatic -lfaultline -Wl,-Bdynamic/')
# shellcheck disable=SC2086
if build_prog hello_static "$src/examples/hello.c" $cflags $static; then
	if dyn NEEDED "$tmp/hello_static" | grep -q libfaultline; then
		bad build_hello_static "linked the shared library"
	else
		ok build_hello_static
		run_hello hello_static
	fi
fi

# The UMap test program, against the installed <umap/umap.h>.
# shellcheck disable=SC2086
if build_prog test_umap "$src/tests/umap/test_umap.c" $ulibs; then
	ok build_test_umap
	out=$(LD_LIBRARY_PATH=$lib timeout 120 "$tmp/test_umap" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && echo "$out" | grep -q '^SUMMARY test_umap: '; then
		ok run_test_umap
	elif [ "$rc" -eq 77 ]; then
		echo "SKIP $NAME.run_test_umap: $(echo "$out" | grep '^SKIP')"
		skip=$((skip + 1))
	else
		echo "$out" | sed 's/^/  /'
		bad run_test_umap "exit $rc"
	fi
fi
finish
