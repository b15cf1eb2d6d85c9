# The hostpath driver: directories of the node, confined to configured roots.
hostpath_SRCS := providers/hostpath/hostpath.c
hostpath_LIBS :=
