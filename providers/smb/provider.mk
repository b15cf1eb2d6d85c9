# The smb driver: SMB/CIFS shares mounted into pods with mount(2), credentials from the secret.
smb_SRCS := providers/smb/smb.c
smb_LIBS :=
