/*
 * quirks.c - what other producers of VHD images do, in one table.
 *
 * Each quirk is here once: its stable id (the first column of SPEC.md §7's
 * table, which tests/test_quirks.c compares with this one), who does it,
 * how the library detects it, what it does about it, the VHD_WARN_* bit an
 * open sets when it tolerates it and the code of check's record about it.
 * The detection itself lives where the bytes are read (footer.c, header.c,
 * vhd.c, bat.c, locator.c); those places set the bits and codes named
 * here, and the tools take their words from here (vhd_warning_text).
 *
 * The creator table drives the one rule other readers apply by producer:
 * which size QEMU's vpc driver gives the disk (vhd_qemu_size).
 */
#include <stdio.h>
#include "internal.h"

static const struct vhd_quirk quirks[] = {
	{ "chs-size", "QEMU vs the rest (§6)",
	  "size from the CHS geometry vs the current size",
	  "creator application and geometry (vhd_qemu_size)",
	  "current size always; `--chs-round` to satisfy QEMU; `info` shows "
	  "what QEMU before 10.0 and from 10.0 reads",
	  0, VHD_CODE_NONE, NULL },
	{ "qemu-created", "QEMU",
	  "`qemu-img create` rounds sizes up to a CHS capacity; `force_size=on` "
	  "writes creator `qem2` and geometry 65535/16/255",
	  "creator `qemu` or `qem2`",
	  "read as any other image (current size); nothing to fix",
	  0, VHD_CODE_NONE, NULL },
	{ "azure", "Azure",
	  "Azure wants fixed VHDs of whole MiB, at least 20 MiB",
	  "`check --azure`",
	  "`create` and `convert` keep exact sizes by default; `convert "
	  "--azure` makes a conforming image and `check --azure` names each "
	  "broken rule (§13)",
	  0, VHD_CODE_AZURE_RULE, NULL },
	{ "fixed-footer-only", "everyone / QEMU",
	  "fixed VHDs have only the trailing footer; QEMU probes offset 0 and "
	  "takes them for raw unless told `-f vpc`",
	  "footer at the end, none at 0",
	  "we probe both ends (`vhd_probe`)",
	  0, VHD_CODE_NONE, NULL },
	{ "footer-511", "pre-2004 Virtual PC",
	  "511-byte trailing footer",
	  "no footer in the last 512 bytes, a valid one in the last 511",
	  "accepted with a warning (§2.1)",
	  VHD_WARN_FOOTER_511, VHD_CODE_FOOTER_511,
	  "old 511-byte trailing footer" },
	{ "footer-from-copy", "anyone",
	  "trailing footer missing or stale after a crash or ENOSPC",
	  "no valid trailing footer, a valid copy at 0 (dynamic disks)",
	  "fall back to the copy at 0 with a warning; `check` reports it, "
	  "`check --repair` rewrites it",
	  VHD_WARN_FOOTER_FROM_COPY, VHD_CODE_FOOTER_FROM_COPY,
	  "trailing footer missing or damaged; used the copy at offset 0" },
	{ "footer-checksum", "various",
	  "bad footer checksum; QEMU refuses it, libvhdi does not check",
	  "checksum field vs the ones' complement byte sum",
	  "refused, unless `VHD_OPEN_IGNORE_CHECKSUM` (`--ignore-checksum`)",
	  VHD_WARN_FOOTER_CHECKSUM, VHD_CODE_FOOTER_CHECKSUM,
	  "footer checksum is wrong (ignored)" },
	{ "header-checksum", "various",
	  "bad dynamic header checksum; QEMU and libvhdi do not check it",
	  "checksum field vs the ones' complement byte sum",
	  "refused, unless `VHD_OPEN_IGNORE_CHECKSUM` (`--ignore-checksum`)",
	  VHD_WARN_HEADER_CHECKSUM, VHD_CODE_HEADER_CHECKSUM,
	  "dynamic header checksum is wrong (ignored)" },
	{ "hidden-byte", "old tapdisk (blktap)",
	  "byte 85 (\"hidden\") set without fixing the checksum",
	  "the checksum matches with byte 85 taken as zero",
	  "accepted with a warning; the footer copy may differ in it",
	  VHD_WARN_HIDDEN_BYTE, VHD_CODE_HIDDEN_BYTE,
	  "tapdisk hidden byte set with a stale checksum" },
	{ "features-bit", "the specification",
	  "features bit 0x2 (reserved, must be set) clear",
	  "footer features field",
	  "tolerated silently: nothing depends on it",
	  0, VHD_CODE_NONE, NULL },
	{ "metadata-order", "Windows, blktap",
	  "metadata in any order: locator data before the BAT (Windows), "
	  "batmap and locators after the BAT (blktap)",
	  "the extents of header, BAT, locators and batmap",
	  "every extent counts as metadata; new blocks go after **all** of it "
	  "(§8.1). QEMU places its first new block right after the BAT and "
	  "overwrites blktap's batmap and locators; we do not, and we write "
	  "our own locators before the BAT so QEMU cannot (§5.3)",
	  0, VHD_CODE_BAT_ENTRY, NULL },
	{ "data-4k-aligned", "Windows, blktap",
	  "block data 4 KiB aligned (bitmap at sector 7, 15, ...)",
	  "BAT entries",
	  "we align the same way; unaligned images read fine",
	  0, VHD_CODE_NONE, NULL },
	{ "qemu-full-bitmaps", "QEMU",
	  "every bitmap bit set on allocation",
	  "bitmaps",
	  "fine for dynamic disks; wrong for children (we keep child bitmaps "
	  "exact)",
	  0, VHD_CODE_NONE, NULL },
	{ "child-zeros", "spec",
	  "zeros written to a child over parent data must be stored",
	  "writes to a differencing disk",
	  "§5.4",
	  0, VHD_CODE_NONE, NULL },
	{ "blktap-batmap", "blktap",
	  "batmap: a bit per block meaning \"fully allocated\", with its own "
	  "checksum",
	  "a `tdbatmap` header after the BAT",
	  "kept valid; we never set a bit, only clear it (§4.2); `check` "
	  "verifies it",
	  0, VHD_CODE_BATMAP, NULL },
	{ "raw-parent", "blktap",
	  "a raw parent (null parent unique id)",
	  "parent unique id all zeros",
	  "raw parents read",
	  0, VHD_CODE_NONE, NULL },
	{ "over-2040g", "blktap",
	  "creator `tap\\0`, only 2 MiB blocks, sizes above 2040 GiB",
	  "footer current size",
	  "sizes above 2040 GiB read if the BAT and file are consistent, "
	  "refused by `create`",
	  0, VHD_CODE_NONE, NULL },
	{ "locator-forms", "all",
	  "what goes in locators differs (Hyper-V `C:\\...` in W2ku and "
	  "`.\\name` in W2ru; blktap `./name` in W2ku, W2ru and MacX; QEMU no "
	  "locators)",
	  "parent locator platform codes and data",
	  "lookup order of §5.2",
	  0, VHD_CODE_LOCATOR, NULL },
	{ "original-size", "libvhdi; Hyper-V, QEMU",
	  "original size used as the disk size (libvhdi); left stale by a "
	  "resize (Hyper-V, QEMU)",
	  "footer original size",
	  "ignored when reading; our `resize` keeps it equal to the current "
	  "size so libvhdi agrees",
	  0, VHD_CODE_NONE, NULL },
	{ "bat-larger", "blktap, resizes",
	  "BAT larger than the disk needs",
	  "max table entries above ⌈size / block size⌉",
	  "accepted; entries past the disk must be unused; our shrink leaves "
	  "such spare entries too (§9)",
	  0, VHD_CODE_BAT_ENTRY, NULL },
	{ "bat-unordered", "Windows",
	  "BAT entries out of order",
	  "BAT entries",
	  "accepted",
	  0, VHD_CODE_NONE, NULL },
	{ "vhdx-log", "Hyper-V",
	  "a VHDX whose log is not empty (unclean shutdown)",
	  "VHDX header log GUID",
	  "replayed in memory with a warning; the file is unchanged (§20.4)",
	  VHD_WARN_LOG_REPLAYED, VHD_CODE_LOG_REPLAYED,
	  "the VHDX log was not empty (unclean shutdown): replayed in memory, "
	  "the file is unchanged" },
};

const struct vhd_quirk *
vhd_quirk_table(size_t *n)
{
	*n = sizeof(quirks) / sizeof(quirks[0]);
	return quirks;
}

const struct vhd_quirk *
vhd_quirk_by_warn(unsigned warn)
{
	for (size_t i = 0; i < sizeof(quirks) / sizeof(quirks[0]); i++)
		if (quirks[i].warn && quirks[i].warn == warn)
			return &quirks[i];
	return NULL;
}

const char *
vhd_warning_text(unsigned warn)
{
	const struct vhd_quirk *q = vhd_quirk_by_warn(warn);

	return q ? q->warn_text : NULL;
}

/* Creator applications (footer bytes 28..31) and which size QEMU's vpc
 * driver (block/vpc.c) takes for them: the CHS capacity (1) or the
 * current size (0).  Before 10.0 QEMU took the current size only for
 * `win `, `qem2`, `d2v `, `tap\0` and `CTXS` and the CHS capacity for every
 * other creator; from 10.0 (the patch "vpc: Read images exported from
 * Azure correctly", 2025) it takes the CHS capacity only for `vpc ` and
 * `qemu` and the current size for every other.  Either way the maximum
 * geometry 65535/16/255 means the current size. */
static const struct {
	char app[4];
	const char *producer;
	unsigned char chs_before_10, chs_from_10;
} creators[] = {
	{ "vpc ", "Virtual PC",            1, 1 },
	{ "qemu", "QEMU (CHS geometry)",   1, 1 },
	{ "qem2", "QEMU (force_size)",     0, 0 },
	{ "win ", "Windows, Hyper-V",      0, 0 },
	{ "d2v ", "Disk2vhd",              0, 0 },
	{ { 't', 'a', 'p', 0 }, "Xen blktap (vhd-util, tapdisk)", 0, 0 },
	{ "CTXS", "XenConverter",          0, 0 },
	{ { 'w', 'a', 0, 0 }, "Azure",     1, 0 },
	{ "vbox", "VirtualBox",            1, 0 },
	{ "lvhd", "libvhd",                1, 0 },
};

/* Not a known creator: QEMU before 10.0 takes the CHS capacity, from 10.0
 * the current size. */
#define UNKNOWN_CHS_BEFORE_10 1
#define UNKNOWN_CHS_FROM_10   0

uint64_t
vhd_qemu_size(const struct vhd_info *in, unsigned qemu_version)
{
	int chs = qemu_version >= 1000 ? UNKNOWN_CHS_FROM_10 :
		  UNKNOWN_CHS_BEFORE_10;

	if (!in)
		return 0;
	/* QEMU compares the product with 65535 * 16 * 255 sectors. */
	if ((uint64_t)in->cylinders * in->heads * in->sectors_per_track ==
	    UINT64_C(65535) * 16 * 255)
		return in->virtual_size;
	for (size_t i = 0; i < sizeof(creators) / sizeof(creators[0]); i++)
		if (memcmp(in->creator_app, creators[i].app, 4) == 0)
			chs = qemu_version >= 1000 ? creators[i].chs_from_10 :
			      creators[i].chs_before_10;
	return chs ? in->chs_size : in->virtual_size;
}
