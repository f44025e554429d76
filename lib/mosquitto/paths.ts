/**
 * Where components/broker puts things inside the Mosquitto container, in one place: the rendered
 * mosquitto.conf points at these paths and the component uploads to them. Both image lines
 * (mosquitto-go-auth, default for both variants, and eclipse-mosquitto) have /mosquitto, and the
 * go-auth images ship their plugin there.
 */
export const containerPaths = {
  config: "/mosquitto/config/mosquitto.conf",
  caFile: "/mosquitto/certs/ca.crt",
  certFile: "/mosquitto/certs/server.crt",
  keyFile: "/mosquitto/certs/server.key",
  certDir: "/mosquitto/certs",
  persistenceDir: "/mosquitto/data",
  goAuthPlugin: "/mosquitto/go-auth.so",
} as const;
