# The nfs driver: NFS exports (optionally a per-volume subdirectory) mounted into pods with mount.nfs.
nfs_SRCS := providers/nfs/nfs.c providers/nfs/podsubdir.c
nfs_LIBS :=
