/* The mount floor: the bare syscalls of a pod bind mount and its unmount,
 * with no parsing, checks or locking. Static, like the exec floor.
 * floor_mount bind SRC DST | floor_mount umount DST */
#include <string.h>
#include <sys/mount.h>

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "bind"))
		return mount(argv[2], argv[3], NULL, MS_BIND, NULL) ? 1 : 0;
	if (argc == 3 && !strcmp(argv[1], "umount"))
		return umount2(argv[2], UMOUNT_NOFOLLOW) ? 1 : 0;
	return 2;
}
