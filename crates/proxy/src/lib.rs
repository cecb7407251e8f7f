//! Routing through Traefik. The platform writes one dynamic configuration file
//! per application into the directory Traefik's file provider watches; every
//! write is atomic (write a temporary file, then rename), so Traefik never reads
//! half a file. After a change the platform asks Traefik's API until the new
//! servers are loaded, and only then takes old instances away.
