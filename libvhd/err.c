/* err.c - diagnostic records: the thread's last error (vhd_errmsg,
 * vhd_last_error in vhd.h), the problem collector the validators share
 * with check, and the names of the codes. */
#include <stdarg.h>
#include <stdio.h>
#include "internal.h"

static _Thread_local struct vhd_errrec last;
static _Thread_local struct vhd_diag last_view;

/* Stable names of enum vhd_code, in its order (JSON, logs). */
static const char *const code_names[VHD_CODE_COUNT_] = {
	[VHD_CODE_NONE]                 = "none",
	[VHD_CODE_DAMAGED]              = "damaged",
	[VHD_CODE_NOT_VHD]              = "not-vhd",
	[VHD_CODE_FOOTER_COOKIE]        = "footer-cookie",
	[VHD_CODE_FOOTER_CHECKSUM]      = "footer-checksum",
	[VHD_CODE_FOOTER_VERSION]       = "footer-version",
	[VHD_CODE_FOOTER_TYPE]          = "footer-type",
	[VHD_CODE_FOOTER_SIZE]          = "footer-size",
	[VHD_CODE_FOOTER_DATA_OFFSET]   = "footer-data-offset",
	[VHD_CODE_FOOTER_COPY_DIFFERS]  = "footer-copy-differs",
	[VHD_CODE_FOOTER_FROM_COPY]     = "footer-from-copy",
	[VHD_CODE_FOOTER_511]           = "footer-511",
	[VHD_CODE_HIDDEN_BYTE]          = "hidden-byte",
	[VHD_CODE_HEADER_COOKIE]        = "header-cookie",
	[VHD_CODE_HEADER_CHECKSUM]      = "header-checksum",
	[VHD_CODE_HEADER_VERSION]       = "header-version",
	[VHD_CODE_HEADER_BLOCK_SIZE]    = "header-block-size",
	[VHD_CODE_HEADER_TABLE_ENTRIES] = "header-table-entries",
	[VHD_CODE_HEADER_TABLE_OFFSET]  = "header-table-offset",
	[VHD_CODE_BAT_ENTRY]            = "bat-entry",
	[VHD_CODE_BATMAP]               = "batmap",
	[VHD_CODE_LOCATOR]              = "locator",
	[VHD_CODE_LEAKED]               = "leaked",
	[VHD_CODE_PARENT_MISSING]       = "parent-missing",
	[VHD_CODE_PARENT_MISMATCH]      = "parent-mismatch",
	[VHD_CODE_PARENT_SIZE]          = "parent-size",
	[VHD_CODE_CHAIN_LOOP]           = "chain-loop",
	[VHD_CODE_LOCKED]               = "locked",
	[VHD_CODE_VHDX]                 = "vhdx",
	[VHD_CODE_LOG_REPLAYED]         = "log-replayed",
	[VHD_CODE_UNSUPPORTED]          = "unsupported",
	[VHD_CODE_AZURE_RULE]           = "azure-rule",
};

const char *
vhd_code_name(enum vhd_code code)
{
	if ((unsigned)code >= VHD_CODE_COUNT_ || !code_names[code])
		return "unknown";
	return code_names[code];
}

static void
copy_str(char *dst, size_t n, const char *src, int *has)
{
	*has = src != NULL;
	snprintf(dst, n, "%s", src ? src : "");
}

void
vhd_rec_vformat(struct vhd_errrec *r, enum vhd_severity sev,
		enum vhd_code code, uint64_t off, const char *expected,
		const char *found, const char *fmt, va_list ap)
{
	/* The file a message names is its format's first argument when
	 * the format starts "'%s': " (the library's convention): taken
	 * from the arguments, never from the formatted text. */
	static const char prefix[] = "'%s': ";
	va_list aq;

	r->has_file = strncmp(fmt, prefix, sizeof(prefix) - 1) == 0;
	r->file[0] = 0;
	if (r->has_file) {
		const char *f;

		va_copy(aq, ap);
		f = va_arg(aq, const char *);
		va_end(aq);
		snprintf(r->file, sizeof(r->file), "%s", f ? f : "");
	}
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	r->msg_off = r->has_file ? strlen(r->file) + 4 : 0;
	if (r->msg_off > strlen(r->text))
		r->msg_off = strlen(r->text);
	r->sev = sev;
	r->code = code;
	r->offset = off;
	copy_str(r->expected, sizeof(r->expected), expected, &r->has_expected);
	copy_str(r->found, sizeof(r->found), found, &r->has_found);
}

void
vhd_rec_vfile(struct vhd_errrec *r, enum vhd_severity sev,
	      enum vhd_code code, uint64_t off, const char *file,
	      const char *fmt, va_list ap)
{
	int n;

	memset(r, 0, sizeof(*r));
	snprintf(r->file, sizeof(r->file), "%s", file);
	r->has_file = 1;
	n = snprintf(r->text, sizeof(r->text), "'%s': ", file);
	if (n < 0 || (size_t)n >= sizeof(r->text))
		n = 0;
	vsnprintf(r->text + n, sizeof(r->text) - (size_t)n, fmt, ap);
	r->msg_off = (size_t)n;
	r->sev = sev;
	r->code = code;
	r->offset = off;
}

void
vhd_rec_view(const struct vhd_errrec *r, struct vhd_diag *d)
{
	memset(d, 0, sizeof(*d));
	d->struct_size = sizeof(*d);
	d->severity = r->sev;
	d->code = r->code;
	d->file = r->has_file ? r->file : NULL;
	d->offset = r->offset;
	d->expected = r->has_expected ? r->expected : NULL;
	d->found = r->has_found ? r->found : NULL;
	d->text = r->text;
	d->message = r->text + r->msg_off;
}

const char *
vhd_errmsg(void)
{
	return last.text[0] ? last.text : "no error";
}

const struct vhd_diag *
vhd_last_error(void)
{
	vhd_rec_view(&last, &last_view);

	return &last_view;
}

const char *
vhd_errmsg_about(const char *file)
{
	if (file && last.has_file && strcmp(last.file, file) == 0)
		return last.text + last.msg_off;
	return last.text;
}

static enum vhd_code
code_of_errno(int err)
{
	switch (err) {
	case EBADMSG: return VHD_CODE_DAMAGED;
	case EBUSY:   return VHD_CODE_LOCKED;
	case ENOTSUP: return VHD_CODE_UNSUPPORTED;
	default:      return VHD_CODE_NONE;
	}
}

int
vhd_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vhd_rec_vformat(&last, VHD_SEV_ERROR, code_of_errno(err),
			VHD_DIAG_NO_OFFSET, NULL, NULL, fmt, ap);
	va_end(ap);
	return -err;
}

int
vhd_err_code(int err, enum vhd_code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vhd_rec_vformat(&last, VHD_SEV_ERROR, code, VHD_DIAG_NO_OFFSET, NULL,
			NULL, fmt, ap);
	va_end(ap);
	return -err;
}

void
vhd_err_clear(void)
{
	memset(&last, 0, sizeof(last));
}

int
vhd_err_is_set(void)
{
	return last.text[0] != 0;
}

void
vhd_err_save(struct vhd_errrec *s)
{
	*s = last;
}

int
vhd_err_restore(int err, const struct vhd_errrec *s)
{
	last = *s;
	return err;
}

void
vhd_problem(struct vhd_problems *p, enum vhd_code code, uint64_t off,
	    const char *expected, const char *found, const char *fmt, ...)
{
	struct vhd_errrec r;
	va_list ap;

	va_start(ap, fmt);
	vhd_rec_vformat(&r, VHD_SEV_ERROR, code, off, expected, found, fmt,
			ap);
	va_end(ap);
	if (p->count++ == 0)
		p->first = r;
	if (p->fn) {
		struct vhd_diag d;

		vhd_rec_view(&r, &d);
		p->fn(p->arg, &d);
	}
}

void
vhd_report_text(void *arg, const struct vhd_diag *d)
{
	const struct vhd_text_report *t = arg;
	unsigned sev = (unsigned)d->severity;
	const char *pre = t->prefix[sev <= VHD_SEV_REPAIRED ? sev : 0];
	char line[1100];

	if (!t->fn)
		return;
	if (!pre) {
		t->fn(t->arg, d->text);
		return;
	}
	snprintf(line, sizeof(line), "%s%s", pre, d->text);
	t->fn(t->arg, line);
}

int
vhd_problems_result(struct vhd_problems *p)
{
	if (p->count == 0)
		return 0;
	if (p->fn)
		return p->count;
	return vhd_err_restore(-EBADMSG, &p->first);
}
