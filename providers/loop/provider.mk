# The loop driver: image files on the node as block volumes.
loop_SRCS := providers/loop/loop.c providers/loop/loopdev.c
loop_LIBS :=
