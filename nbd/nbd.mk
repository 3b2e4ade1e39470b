# vhdnbd: NBD server.
