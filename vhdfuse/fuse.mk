# vhdfuse: FUSE front-end (the only component that uses pkg-config fuse3).
