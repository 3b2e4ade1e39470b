/*
 * tool.h - shared helpers of the vhdtool subcommands (internal to vhdtool;
 * the library is reached only through vhd.h).
 */
#ifndef VHDTOOL_TOOL_H
#define VHDTOOL_TOOL_H

#include <signal.h>
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

/* --lock-wait SECONDS as milliseconds, or -1 (main.c). */
int tool_lock_wait_ms(const char *s);

/* info, check and map: an image in use by a writer is refused with a
 * hint about -U; with -U the output carries a note (util.c). */
extern int tool_force_share_hint;
void tool_force_share_note(const char *file);

int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_set_parent(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_upload(int argc, char **argv);
int cmd_download(int argc, char **argv);

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

/* SIGINT and SIGTERM (and SIGHUP with hup) set tool_interrupted, which
 * long copies poll to stop cleanly (util.c). */
extern volatile sig_atomic_t tool_interrupted;
void tool_catch_signals(int hup);

/* "vhdtool: FILE: problem" (FILE may be NULL: "vhdtool: problem"). */
void tool_err(const char *file, const char *fmt, ...)
	TOOL_PRINTF(2, 3);
/* Reports a failed library call (err < 0) about file with vhd_errmsg()
 * and returns the exit code for it: EXIT_DAMAGED for -EBADMSG, else
 * EXIT_ERROR. */
int tool_lib_err(const char *file, int err);
/* A copy of the library's last error record (vhd_last_error): the file
 * it names ("" if none), its whole text, its message without the file,
 * its code. */
struct tool_msg {
	char file[512];
	char text[1024];
	char message[1024];
	enum vhd_code code;
};
void tool_msg_save(struct tool_msg *m);
/* What follows "vhdtool: FILE: ": the message if m is about file, else
 * the whole text (it names another file). */
const char *tool_msg_text(const struct tool_msg *m, const char *file);
/* "vhdtool: NAME: message (hint)" for a saved record about file (name is
 * what the user called it; hint may be NULL); returns the exit code. */
int tool_msg_err(const char *name, const char *file, const struct tool_msg *m,
		 const char *hint, int err);
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

/* The name of a disk image format other than VHD whose magic starts buf
 * (n bytes from offset 0: VHDX, qcow2, VMDK, VDI, QED), or NULL. */
const char *foreign_format(const void *buf, size_t n);
/* The same for a file (NULL also when it cannot be read). */
const char *foreign_format_file(const char *path);
/* Says that file is an image of format fmt, which vhdtool does not read,
 * and how to convert it (path: its name for qemu-img, NULL for a stream);
 * returns EXIT_ERROR. */
int tool_foreign_err(const char *file, const char *path, const char *fmt);

/* The files a command reads (device and inode, so that links, "..",
 * and bind mounts compare equal), and what each is. */
#define TOOL_INPUTS_MAX 66
struct tool_inputs {
	int n;
	unsigned long long dev[TOOL_INPUTS_MAX], ino[TOOL_INPUTS_MAX];
	char what[TOOL_INPUTS_MAX][160];
};
/* Adds the file at path (or fd when path is NULL); ignored if it cannot
 * be stat'ed. */
void tool_inputs_add(struct tool_inputs *in, const char *path, int fd,
		     const char *what);
/* Adds every image of v's chain, v first (described as "the source" /
 * "FILE"), then its parents. */
void tool_inputs_add_chain(struct tool_inputs *in, struct vhd *v,
			   const char *name);
/* EXIT_OK unless out (or the open fd when out is NULL) is one of the
 * inputs; then says which and returns EXIT_ERROR.  -f never overrides
 * this: replacing an input destroys the data being read. */
int tool_check_output(const struct tool_inputs *in, const char *out, int fd,
		      const char *name);

/* A disk to read (source.c): a VHD or VHDX (chain flattened) or a raw
 * image, as a source of the library's copy engine. */
struct tool_src {
	const char *path;       /* as the user named it: for messages */
	const char *file;       /* the file opened: path, or a spool of it */
	struct vhd_copy_end *e; /* NULL until opened */
	uint64_t size;          /* disk size */
};
/* tool_src_open_file's how: */
#define TOOL_SRC_FOREIGN        1u /* refuse (and name) qcow2, VMDK...
				      found by content */
#define TOOL_SRC_CHECKSUM_HINT  4u /* a bad checksum names
				      --ignore-checksum */
/* Opens s->file (messages name s->path).  from: -1 by content (a file
 * named .vhd/.vpc must then be a VHD), 0 raw, 1 VHD; vhd_flags are added
 * to VHD_OPEN_RDONLY.  A raw disk's size is the file's or the device's,
 * unchecked.  EXIT_OK or the exit code after the message; on failure what
 * was opened stays in s for the caller to close. */
int tool_src_open_file(struct tool_src *s, int from, unsigned vhd_flags,
		       unsigned how);
/* tool_src_open_file of path, and a raw disk's size must be a positive
 * multiple of 512 bytes, at most 2040 GiB (upload). */
int tool_src_open(struct tool_src *s, const char *path, int from);
void tool_src_close(struct tool_src *s);
/* The extent at off: *len > 0 bytes all data (1) or all zero (0); -errno. */
int tool_src_extent(struct tool_src *s, uint64_t off, uint64_t *len);
int tool_src_read(struct tool_src *s, void *buf, size_t n, uint64_t off);
/* Does the name end in .vhd or .vpc (convert's rule for VHD output)? */
int tool_name_is_vhd(const char *path);
/* Does it end in .vhdx or .avhdx? */
int tool_name_is_vhdx(const char *path);
/* The disk size convert --azure gives: a whole MiB, at least 20 MiB. */
uint64_t tool_azure_size(uint64_t size);

/* buf holds [off, off+n): calls fn once for each run of consecutive
 * granules (granule bytes, aligned to absolute offsets) that are not all
 * zero, with the run's bytes, length and offset.  0, or fn's first
 * negative return. */
int tool_nonzero_runs(const char *buf, size_t n, uint64_t off, size_t granule,
		      int (*fn)(void *arg, const char *p, size_t len,
				uint64_t at),
		      void *arg);

#endif
