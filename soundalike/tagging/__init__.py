"""Tags (genre, mood, instruments, vocals). So far: the offline teacher step (:mod:`soundalike.tagging.teacher`)."""
