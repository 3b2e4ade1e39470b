/*
 * tool.h - shared helpers of the vhdtool subcommands (internal to vhdtool;
 * the library is reached only through vhd.h).
 */
#ifndef VHDTOOL_TOOL_H
#define VHDTOOL_TOOL_H

#include <stdint.h>
#include <stdio.h>
#include "largefile.h"
#include "vhd.h"

/* Exit codes (see vhdtool(1) "EXIT STATUS"). */
#define EXIT_OK      0
#define EXIT_ERROR   1
#define EXIT_USAGE   2
#define EXIT_DAMAGED 3

#ifdef __GNUC__
#define TOOL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TOOL_PRINTF(f, a)
#endif

struct cmd {
	const char *name;
	int (*run)(int argc, char **argv);  /* argv[0] is the command name */
	const char *summary;
};

int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_set_parent(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_compact(int argc, char **argv);

/* Progress line (progress.c).  -p / --progress[=auto|always|never]. */
#define PROGRESS_OFF    0
#define PROGRESS_AUTO   1       /* only when standard error is a terminal */
#define PROGRESS_ALWAYS 2
struct progress {
	int on, tty, bytes, drawn;
	double start, last;
	uint64_t done, total;
};
/* The mode named by a --progress argument (NULL: auto), or -1. */
int progress_mode(const char *arg);
/* bytes: done/total are bytes (shown with units and a rate). */
void progress_init(struct progress *p, int mode, int bytes);
void progress_update(struct progress *p, uint64_t done, uint64_t total);
/* A vhd_progress_fn; arg is the struct progress. */
void progress_cb(void *arg, uint64_t done, uint64_t total);
void progress_end(struct progress *p);
/* -p / --progress[=MODE] of a subcommand: sets *mode, or prints the usage
 * error and returns EXIT_USAGE. */
int tool_progress_opt(const char *usage, char **argv, const char *arg, int *mode);

/* "vhdtool: FILE: problem" (FILE may be NULL: "vhdtool: problem"). */
void tool_err(const char *file, const char *fmt, ...)
	TOOL_PRINTF(2, 3);
/* Reports a failed library call (err < 0) about file with vhd_errmsg()
 * and returns the exit code for it: EXIT_DAMAGED for -EBADMSG, else
 * EXIT_ERROR. */
int tool_lib_err(const char *file, int err);
/* msg without a leading "'file': " or "file: ". */
const char *strip_file(const char *msg, const char *file);
/* The same with a message saved earlier. */
int tool_msg_err(const char *file, const char *msg, int err);
/* Prints the usage text (and a pointer to --help) to stderr, returns
 * EXIT_USAGE.  why may be NULL. */
int tool_usage(const char *usage, const char *cmd, const char *why, ...)
	TOOL_PRINTF(3, 4);
/* EXIT_OK when file is a VHD image (a footer at its end or a copy at
 * offset 0); otherwise says why and returns the exit code. */
int tool_need_vhd(const char *file);
/* Takes the single FILE operand after the options into *file: EXIT_OK, or
 * EXIT_USAGE after a usage message. */
int tool_one_file(const char *usage, int argc, char **argv, const char **file);
/* Reports a getopt failure ('?' or ':') for argv, returns EXIT_USAGE. */
int tool_bad_option(const char *usage, char **argv, int ret);

/* "1G", "512K", "4096": binary suffixes K M G T (optionally "iB"/"B").
 * 0 or -1 (malformed or overflows). */
int parse_size(const char *s, uint64_t *out);
/* "1 GiB", "1.50 MiB", "512 bytes" into buf. */
const char *human_size(uint64_t n, char buf[32]);
/* 8-4-4-4-12 lower-case hex of the 16 bytes in stored order. */
const char *uuid_str(const uint8_t id[16], char buf[37]);
/* VHD timestamp (seconds since 2000-01-01 UTC) as ISO 8601 UTC. */
const char *vhd_time_str(uint32_t t, char buf[32]);
/* Printable copy of a 4-byte creator field ("tap\0" -> "tap"). */
const char *creator_str(const char *field, char buf[32]);

/* A JSON string literal (quotes included); bytes that are not valid
 * UTF-8 are written as \u00XX so the output always parses. */
void json_str(FILE *f, const char *s);

/* Azure's upload rules (azure.c): one "azure: ..." line per broken rule
 * passed to fn; returns how many. */
int azure_check(const char *file, void (*fn)(void *, const char *), void *arg);

/* Is the buffer all zero bytes? */
int is_zero(const void *buf, size_t n);

#endif
