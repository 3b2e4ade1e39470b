/* cmd_check.c - vhdtool check: report every inconsistency; never writes. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tool.h"

static const char usage[] =
	"usage: vhdtool check [--json] [--no-parent] [--repair] [--azure] [-U] FILE\n";

static const char help[] =
	"Verify the metadata of the VHD image FILE (and of its parents): footer,\n"
	"header, block allocation table, bitmaps, parent locators.  Each problem is\n"
	"printed on its own line with the offset and the expected and found values.\n"
	"The image is opened read-only and never modified, unless --repair is given.\n\n"
	"  -j, --json        print {\"file\", \"clean\", \"problems\": [...],\n"
	"                    \"diagnostics\": [{\"severity\", \"code\", ...}]} as JSON\n"
	"  -n, --no-parent   do not check the images above a differencing disk\n"
	"  -r, --repair      first fix what can be fixed without guessing (a missing\n"
	"                    or damaged footer from its good copy, leaked space after\n"
	"                    the last block), one line per fix; then check\n"
	"  -a, --azure       also check Azure's upload rules: a fixed VHD, the disk\n"
	"                    size a whole number of MiB (file = N MiB + 512), at\n"
	"                    least 20 MiB; each broken rule is an \"azure:\" problem\n"
	"  -U, --force-share check even while another program writes the image\n"
	"                    (as qemu-img check -U); what is reported may then be\n"
	"                    inconsistent.  Not with --repair\n"
	"  -h, --help        show this help\n\n"
	"Exit status: 0 no problems, 3 problems found (or not a VHD image),\n"
	"1 the file could not be read or a parent is missing.\n";

/* One record as check prints it: the line the library words (warnings
 * marked "warning: "), what the text output shows, and the record's
 * fields for --json. */
struct problem {
	char *line;             /* "warning: 'a.vhd': ..." as vhd_check gives */
	char *file;             /* the file it is about, or NULL */
	char *message;          /* the line without the file */
	char *expected, *found; /* or NULL */
	enum vhd_severity severity;
	enum vhd_code code;
	uint64_t offset;
};

struct problems {
	struct problem *v;
	size_t n, cap;
	size_t bad;             /* records that are not warnings */
};

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void
collect_diag(void *arg, const struct vhd_diag *d)
{
	struct problems *p = arg;
	struct problem *x;
	char line[1100];

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct problem *nv = realloc(p->v, cap * sizeof(*nv));
		if (!nv)
			return;
		p->v = nv;
		p->cap = cap;
	}
	x = &p->v[p->n];
	snprintf(line, sizeof(line), "%s%s", d->severity == VHD_SEV_WARNING ?
		 "warning: " : "", d->text);
	if ((x->line = strdup(line)) == NULL)
		return;
	x->file = dup_or_null(d->file);
	x->message = strdup(d->message);
	x->expected = dup_or_null(d->expected);
	x->found = dup_or_null(d->found);
	x->severity = d->severity;
	x->code = d->code;
	x->offset = d->offset;
	p->n++;
	/* Warnings (a tolerated quirk, leaked space) are shown but do not
	 * make the image damaged; the library counts the same way. */
	if (d->severity != VHD_SEV_WARNING)
		p->bad++;
}

/* A problem the tool finds itself (an Azure rule, not a VHD at all). */
static void
collect_own(struct problems *p, enum vhd_code code, const char *text)
{
	struct vhd_diag d = {
		.struct_size = sizeof d, .severity = VHD_SEV_ERROR,
		.code = code, .offset = VHD_DIAG_NO_OFFSET, .text = text,
		.message = text,
	};

	collect_diag(p, &d);
}

static void
collect_azure(void *arg, const char *text)
{
	collect_own(arg, VHD_CODE_AZURE_RULE, text);
}

/* "FILE: problem"; a problem about an image further up the chain is
 * printed as "other.vhd: ...". */
static void
print_problem(const char *file, const struct problem *x)
{
	printf("%s: %s%s\n", x->file ? x->file : file,
	       x->severity == VHD_SEV_WARNING ? "warning: " : "", x->message);
}

/* Do a and b say the same thing about different numbers (offsets, BAT
 * entries, values)? */
static int
same_kind(const char *a, const char *b)
{
	for (;;) {
		int da = *a >= '0' && *a <= '9', db = *b >= '0' && *b <= '9';
		if (da != db)
			return 0;
		if (da) {
			while (*a >= '0' && *a <= '9')
				a++;
			while (*b >= '0' && *b <= '9')
				b++;
			continue;
		}
		if (*a != *b)
			return 0;
		if (!*a)
			return 1;
		a++;
		b++;
	}
}

/* The first few lines of each run of problems of one kind (one flipped
 * byte can make every BAT entry wrong), then "... and N more like it". */
#define SHOW_OF_A_KIND 3
static void
print_problems(const char *file, const struct problem *v, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && v[j].code == v[i].code &&
		       same_kind(v[i].line, v[j].line))
			j++;
		for (size_t k = i; k < j && k < i + SHOW_OF_A_KIND; k++)
			print_problem(file, &v[k]);
		if (j - i > SHOW_OF_A_KIND)
			printf("%s: ... and %zu more like it\n", file,
			       j - i - SHOW_OF_A_KIND);
		i = j;
	}
}

/* "FILE: repaired: what" (likewise "not repaired: "); in JSON mode these
 * go to stderr. */
static void
print_repair(void *arg, const struct vhd_diag *d)
{
	const char *kind = d->severity == VHD_SEV_REPAIRED ? "repaired: " :
			   "not repaired: ";

	if (d->file)
		fprintf(arg, "%s: %s%s\n", d->file, kind, d->message);
	else
		fprintf(arg, "%s%s\n", kind, d->message);
}

/* A JSON string, or null. */
static void
json_str_or_null(const char *s)
{
	if (s)
		json_str(stdout, s);
	else
		printf("null");
}

int
cmd_check(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "json",      no_argument, NULL, 'j' },
		{ "no-parent", no_argument, NULL, 'n' },
		{ "repair",    no_argument, NULL, 'r' },
		{ "azure",     no_argument, NULL, 'a' },
		{ "force-share", no_argument, NULL, 'U' },
		{ "help",      no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct problems p = { NULL, 0, 0, 0 };
	unsigned flags = 0;
	const char *file;
	int c, json = 0, repair = 0, azure = 0, az = 0, missing = 0, r, rc;

	opterr = 0;
	tool_force_share_hint = 1;
	while ((c = getopt_long(argc, argv, ":jnraUh", lopts, NULL)) != -1) {
		switch (c) {
		case 'U': flags |= VHD_CHECK_FORCE_SHARE; break;
		case 'j': json = 1; break;
		case 'n': flags |= VHD_CHECK_NO_PARENT; break;
		case 'r': repair = 1; break;
		case 'a': azure = 1; break;
		case 'h':
			fputs(usage, stdout);
			fputs(help, stdout);
			return EXIT_OK;
		default:
			return tool_bad_option(usage, argv, c);
		}
	}
	if ((rc = tool_one_file(usage, argc, argv, &file)) != EXIT_OK)
		return rc;
	if (repair && (flags & VHD_CHECK_FORCE_SHARE))
		return tool_usage(usage, argv[0], "--repair writes: it cannot "
				  "share the image (-U)");
	if (repair)
		tool_force_share_hint = 0;
	r = vhd_probe(file);
	if (r < 0)
		return tool_lib_err(file, r);
	if (r == 0 && foreign_format_file(file)) {
		return tool_foreign_err(file, file, foreign_format_file(file));
	} else if (r == 0) {
		collect_own(&p, VHD_CODE_NOT_VHD, "not a VHD image: no footer "
			    "with cookie 'conectix' at its end or at offset 0");
	} else {
		/* The check below is then the re-check after the repair. */
		if (repair && (r = vhd_repair_diag(file, print_repair,
						   json ? stderr : stdout)) < 0)
			return tool_lib_err(file, r);
		r = vhd_check_diag(file, flags, collect_diag, &p);
		if (r < 0) {
			rc = tool_lib_err(file, r);
			goto out;
		}
		if ((size_t)r > p.bad)  /* a report lost to ENOMEM */
			collect_own(&p, VHD_CODE_DAMAGED, "more problems (out "
				    "of memory to list them)");
		if (azure)
			az = azure_check(file, collect_azure, &p);
		/* A parent that is not there is not damage in this file: it
		 * is an error (exit 1), as for every other command.  Told by
		 * the record's code. */
		for (size_t i = 0; i < p.n; i++)
			if (p.v[i].code == VHD_CODE_PARENT_MISSING)
				missing = 1;
	}
	if (json) {
		printf("{\"file\": ");
		json_str(stdout, file);
		printf(", \"clean\": %s, ", p.bad > (size_t)az ? "false" : "true");
		if (azure)
			printf("\"azure_ready\": %s, ", p.bad ? "false" : "true");
		printf("\"problems\": [");
		for (size_t i = 0; i < p.n; i++) {
			printf("%s\n  ", i ? "," : "");
			json_str(stdout, p.v[i].line);
		}
		/* The same records, whole: decide by "code", not "text". */
		printf("%s], \"diagnostics\": [", p.n ? "\n" : "");
		for (size_t i = 0; i < p.n; i++) {
			const struct problem *x = &p.v[i];
			printf("%s\n  {\"severity\": \"%s\", \"code\": \"%s\", "
			       "\"file\": ", i ? "," : "",
			       x->severity == VHD_SEV_WARNING ? "warning" :
			       "error", vhd_code_name(x->code));
			json_str_or_null(x->file ? x->file : file);
			printf(", \"offset\": ");
			if (x->offset == VHD_DIAG_NO_OFFSET)
				printf("null");
			else
				printf("%llu", (unsigned long long)x->offset);
			printf(", \"expected\": ");
			json_str_or_null(x->expected);
			printf(", \"found\": ");
			json_str_or_null(x->found);
			printf(", \"text\": ");
			json_str(stdout, x->line);
			printf("}");
		}
		printf("%s]}\n", p.n ? "\n" : "");
	} else if (p.n == 0) {
		printf("%s: no problems found%s\n", file,
		       azure ? "; meets Azure's upload rules" : "");
	} else {
		print_problems(file, p.v, p.n);
	}
	fflush(stdout);
	if (flags & VHD_CHECK_FORCE_SHARE)
		tool_force_share_note(file);
	if (missing && p.bad - az == 1) {
		fflush(stdout);
		tool_err(file, "its parent is missing: the chain cannot be read "
			 "(vhdtool set-parent points it at a moved parent)");
	} else if (p.bad > (size_t)az) {
		fflush(stdout);
		tool_err(file, "damaged: %zu problem%s found", p.bad - az,
			 p.bad - az == 1 ? "" : "s");
	} else if (az) {
		fflush(stdout);
		tool_err(file, "not ready for Azure: %d rule%s broken", az,
			 az == 1 ? "" : "s");
	}
	rc = missing && p.bad - az == 1 ? EXIT_ERROR :
	     p.bad ? EXIT_DAMAGED : EXIT_OK;
out:
	for (size_t i = 0; i < p.n; i++) {
		free(p.v[i].line);
		free(p.v[i].file);
		free(p.v[i].message);
		free(p.v[i].expected);
		free(p.v[i].found);
	}
	free(p.v);
	return rc;
}
