/* cmd_create.c - vhdtool create: new fixed, dynamic or differencing images. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "tool.h"

static const char usage[] =
	"usage: vhdtool create [--format vhd|vhdx] [--type fixed|dynamic]\n"
	"                      [--block-size SIZE] [--sector-size 512|4096]\n"
	"                      [--chs-round] [--json] FILE SIZE\n"
	"       vhdtool create [--format vhd|vhdx] [--json] --parent PARENT FILE\n";

static const char help[] =
	"Create a new VHD or VHDX image FILE (which must not exist).\n\n"
	"  -f, --format vhd|vhdx     image format (default: vhdx for a FILE ending in\n"
	"                            .vhdx or .avhdx, else vhd)\n"
	"  -t, --type fixed|dynamic  disk type (default dynamic; a differencing disk\n"
	"                            with --parent)\n"
	"  -b, --block-size SIZE     dynamic block size, a power of two from 4K to\n"
	"                            256M (default 2M; Hyper-V also uses 512K);\n"
	"                            VHDX: 1M to 256M (default 32M, 2M for a\n"
	"                            differencing disk)\n"
	"  -s, --sector-size 512|4096  VHDX logical sector size (default 512; a\n"
	"                            differencing disk takes its parent's)\n"
	"  -c, --chs-round           round SIZE up to the next exact C*H*S capacity,\n"
	"                            so readers that size disks by their CHS\n"
	"                            geometry (QEMU, old Virtual PC) agree\n"
	"  -P, --parent PARENT       create a differencing disk on top of PARENT;\n"
	"                            its size is the parent's\n"
	"  -j, --json                print {\"file\", \"type\", \"size\", \"block_size\",\n"
	"                            \"parent\"} as JSON\n"
	"  -h, --help                show this help\n\n"
	"SIZE is in bytes, or with a binary suffix K, M, G or T (1G = 1073741824).\n"
	"It must be a multiple of 512 and at most 2040G (the VHD limit); for VHDX a\n"
	"multiple of the sector size and at most 64T.\n";

static int
parse_type(const char *s, enum vhd_type *t)
{
	if (strcmp(s, "fixed") == 0)
		*t = VHD_TYPE_FIXED;
	else if (strcmp(s, "dynamic") == 0)
		*t = VHD_TYPE_DYNAMIC;
	else
		return -1;
	return 0;
}

/* Check a requested disk size; 0 or an exit code after a message. */
static int
check_size(const char *file, uint64_t size, const char *arg, int vhdx,
	   uint32_t lss)
{
	char h[32];
	uint64_t max = vhdx ? UINT64_C(64) << 40 : VHD_MAX_DISK_SIZE;

	if (size == 0) {
		tool_err(file, "size must be greater than zero");
		return EXIT_ERROR;
	}
	if (size > max) {
		tool_err(file, "size %s (%llu bytes) is larger than the %s limit "
			 "of %s (%llu bytes)", arg, (unsigned long long)size,
			 vhdx ? "VHDX" : "VHD", vhdx ? "64 TiB" : "2040 GiB",
			 (unsigned long long)max);
		return EXIT_ERROR;
	}
	if (size % lss) {
		uint64_t up = (size / lss + 1) * lss;
		tool_err(file, "size %llu is not a multiple of %u bytes; "
			 "try %llu (%s)", (unsigned long long)size, lss,
			 (unsigned long long)up, human_size(up, h));
		return EXIT_ERROR;
	}
	return 0;
}

int
cmd_create(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "type",       required_argument, NULL, 't' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "chs-round",  no_argument,       NULL, 'c' },
		{ "format",     required_argument, NULL, 'f' },
		{ "sector-size", required_argument, NULL, 's' },
		{ "parent",     required_argument, NULL, 'P' },
		{ "json",       no_argument,       NULL, 'j' },
		{ "help",       no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhd_create_opts o;
	const char *file, *size_arg = NULL;
	uint64_t bs = 0;
	int c, type_given = 0, json = 0, r, fmt = -1;
	uint32_t lss = 0;
	char h1[32], h2[32];

	memset(&o, 0, sizeof(o));
	o.struct_size = sizeof(o);
	o.type = VHD_TYPE_DYNAMIC;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:b:cf:s:P:jh", lopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_type(optarg, &o.type) < 0)
				return tool_usage(usage, argv[0],
					"unknown type '%s' (use fixed or dynamic)", optarg);
			type_given = 1;
			break;
		case 'b':
			if (parse_size(optarg, &bs) < 0 || bs > UINT32_MAX)
				return tool_usage(usage, argv[0],
					"bad block size '%s'", optarg);
			if (bs == 0)
				return tool_usage(usage, argv[0], "block size 0: "
					"give a power of two from 512K to 256M "
					"(default 2M)");
			o.block_size = (uint32_t)bs;
			break;
		case 'c':
			o.flags |= VHD_CREATE_CHS_ROUND;
			break;
		case 'f':
			if (strcmp(optarg, "vhd") == 0)
				fmt = 0;
			else if (strcmp(optarg, "vhdx") == 0)
				fmt = 1;
			else
				return tool_usage(usage, argv[0],
					"unknown format '%s' (use vhd or vhdx)", optarg);
			break;
		case 's':
			if (strcmp(optarg, "512") == 0)
				lss = 512;
			else if (strcmp(optarg, "4096") == 0 ||
				 strcmp(optarg, "4K") == 0)
				lss = 4096;
			else
				return tool_usage(usage, argv[0],
					"bad sector size '%s' (use 512 or 4096)", optarg);
			break;
		case 'P':
			o.parent = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			fputs(help, stdout);
			return EXIT_OK;
		default:
			return tool_bad_option(usage, argv, c);
		}
	}
	if (o.parent) {
		if (type_given)
			return tool_usage(usage, argv[0],
				"--parent makes a differencing disk; --type does not apply");
		if (argc - optind != 1)
			return tool_usage(usage, argv[0], argc - optind < 1 ?
				"missing FILE" : "a differencing disk takes its "
				"size from its parent: give no SIZE");
		o.type = VHD_TYPE_DIFF;
	} else if (argc - optind != 2) {
		return tool_usage(usage, argv[0], argc - optind < 2 ?
				  "missing FILE or SIZE" : "too many arguments");
	}
	file = argv[optind];
	if (fmt < 0) {
		size_t l = strlen(file);
		fmt = (l >= 5 && strcasecmp(file + l - 5, ".vhdx") == 0) ||
		      (l >= 6 && strcasecmp(file + l - 6, ".avhdx") == 0);
	}
	if (fmt == 1) {
		o.flags |= VHD_CREATE_VHDX;
		if (lss == 4096)
			o.flags |= VHD_CREATE_SECTOR_4K;
		if (o.flags & VHD_CREATE_CHS_ROUND)
			return tool_usage(usage, argv[0],
				"--chs-round applies to VHD only");
	} else if (lss) {
		return tool_usage(usage, argv[0],
			"--sector-size applies to VHDX only (VHD sectors are 512 bytes)");
	}
	if (!o.parent) {
		size_arg = argv[optind + 1];
		if (parse_size(size_arg, &o.size) < 0)
			return tool_usage(usage, argv[0], "bad size '%s' "
				"(bytes, or a number with K, M, G or T)", size_arg);
		if (o.type == VHD_TYPE_FIXED && o.block_size && fmt != 1)
			return tool_usage(usage, argv[0],
				"--block-size applies to dynamic disks only");
		if (o.flags & VHD_CREATE_CHS_ROUND && o.size &&
		    o.size <= VHD_MAX_DISK_SIZE)
			o.size = vhd_chs_round_up(o.size);
		if ((r = check_size(file, o.size, size_arg, fmt == 1,
				    lss ? lss : 512)) != 0)
			return r;
	}
	r = vhd_create(file, &o);
	if (r < 0)
		return tool_lib_err(file, r);
	if (json) {
		struct vhd *v;
		struct vhd_info in = { .struct_size = sizeof in };
		if ((r = vhd_open(&v, file, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT |
				  VHD_OPEN_NOLOCK)) < 0)
			return tool_lib_err(file, r);
		r = vhd_get_info(v, &in);
		vhd_close(v);
		if (r < 0)
			return tool_lib_err(file, r);
		printf("{\"file\": ");
		json_str(stdout, file);
		printf(", \"type\": \"%s\", \"size\": %llu, \"block_size\": ",
		       vhd_type_name(in.type), (unsigned long long)in.virtual_size);
		/* A fixed disk has no blocks: null, as in info --json. */
		if (in.type == VHD_TYPE_FIXED)
			fputs("null", stdout);
		else
			printf("%u", in.block_size);
		fputs(", \"parent\": ", stdout);
		if (o.parent)
			json_str(stdout, o.parent);
		else
			fputs("null", stdout);
		fputs("}\n", stdout);
	} else if (o.parent)
		printf("%s: differencing %sdisk on '%s'\n", file,
		       fmt == 1 ? "VHDX " : "", o.parent);
	else
		printf("%s: %s %sdisk, %llu bytes (%s)%s%s\n", file,
		       vhd_type_name(o.type), fmt == 1 ? "VHDX " : "",
		       (unsigned long long)o.size,
		       human_size(o.size, h1),
		       o.type == VHD_TYPE_DYNAMIC ? ", block size " : "",
		       o.type == VHD_TYPE_DYNAMIC ? human_size(o.block_size ?
				o.block_size : fmt == 1 ? 32u << 20 :
				VHD_DEFAULT_BLOCK_SIZE, h2) : "");
	return EXIT_OK;
}
