// @peculiar/x509 2.x needs the Reflect metadata polyfill before it is imported.
import "reflect-metadata";
