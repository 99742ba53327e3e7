// SPDX-License-Identifier: MIT
/*
 * faultline: the command-line program.  It dispatches to its subcommands
 * (demo, cp, bench) and documents them; every subcommand parses its own
 * options.
 */
#include "cli_util.h"
#include "cp.h"
#include "demo.h"
#include "../bench/bench.h"

#include <faultline.h>

#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*main)(int argc, char **argv);
	void (*usage)(FILE *f);
	const char *summary;
};

static int help_main(int argc, char **argv);
static int version_main(int argc, char **argv);
static void help_usage(FILE *f);
static void version_usage(FILE *f);

static const struct command commands[] = {
	{"demo", demo_main, demo_usage,
	 "map a file shared and private from several threads, verify it"},
	{"cp", cp_main, cp_usage,
	 "copy an object between a file and a store URL (Redis)"},
	{"bench", bench_main, bench_usage,
	 "run a benchmark scenario beside its baselines"},
	{"help", help_main, help_usage, "show this help, or a command's help"},
	{"version", version_main, version_usage, "print faultline's version"},
};

#define NR_COMMANDS (int)(sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	int i;

	fprintf(f, "usage: faultline COMMAND [OPTIONS]\n"
		   "       faultline --help | --version\n\n"
		   "faultline is a user-space virtual-memory engine: it serves "
		   "page faults of\n"
		   "its mappings itself, through Linux userfaultfd.  This "
		   "program demonstrates\n"
		   "and measures it.\n\ncommands:\n");
	for (i = 0; i < NR_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f, "\n");
	for (i = 0; i < NR_COMMANDS; i++) {
		commands[i].usage(f);
		fprintf(f, "\n");
	}
	fprintf(f, "environment (read by every engine the program makes):\n"
		   "  FAULTLINE_THREADS=N       handler threads (default: one "
		   "per CPU)\n"
		   "  FAULTLINE_FAULT_AROUND=N  most pages mapped around a "
		   "fault (default 4096)\n"
		   "  FAULTLINE_READAHEAD=N     pages per store read and "
		   "readahead window (default 2048)\n"
		   "  FAULTLINE_IO_THREADS=N    threads running store reads "
		   "for faults and\n"
		   "                            readahead (default 2; more "
		   "start while all are busy)\n"
		   "  FAULTLINE_ANON_AROUND=N   anonymous pages zero-filled "
		   "per fault (default 16)\n"
		   "  FAULTLINE_STATS=1         print statistics when an "
		   "engine is destroyed\n\n"
		   "userfaultfd needs root, vm.unprivileged_userfaultfd=1, or "
		   "access to\n/dev/userfaultfd.  Exit status: 0 success, 1 "
		   "failure, 2 bad usage.\n");
}

static int is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

static const struct command *find_command(const char *name)
{
	int i;

	for (i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

static void help_usage(FILE *f)
{
	fprintf(f, "usage: faultline help [COMMAND]\n"
		   "Show the help of every command, or of one.\n");
}

static int help_main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2 || is_help(argv[1])) {
		usage(stdout);
		return 0;
	}
	c = find_command(argv[1]);
	if (c == NULL || argc > 2) {
		cli_error("help: unknown command '%s' (see faultline --help)",
			  argv[argc > 2 ? 2 : 1]);
		return 2;
	}
	c->usage(stdout);
	return 0;
}

static void version_usage(FILE *f)
{
	fprintf(f, "usage: faultline version  (or faultline --version)\n"
		   "Print the version of faultline.\n");
}

static int version_main(int argc, char **argv)
{
	if (argc == 2 && is_help(argv[1])) {
		version_usage(stdout);
		return 0;
	}
	if (argc > 1) {
		cli_error("version: unexpected argument '%s'", argv[1]);
		return 2;
	}
	printf("faultline %s\n", FAULTLINE_VERSION);
	return 0;
}

int main(int argc, char **argv)
{
	const struct command *c;
	int ret;

	cli_check_stdout_at_exit();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (is_help(argv[1])) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return version_main(1, argv + 1);
	c = find_command(argv[1]);
	if (c == NULL) {
		cli_error("unknown %s '%s' (see faultline --help)",
			  argv[1][0] == '-' ? "option" : "command", argv[1]);
		return 2;
	}
	ret = c->main(argc - 1, argv + 1);
	return ret; /* a write error on stdout makes it 1 (at exit) */
}
