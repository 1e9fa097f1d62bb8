/** The agent's `auto_auth.method` as one of the shared client's auth methods. */
import { appRoleAuth, certAuth, jwtAuth, kubernetesAuth, type AuthMethod } from "../../client/index.js";
import type { AutoAuthMethodConfig } from "../config.js";

export function authMethodFor(method: AutoAuthMethodConfig): AuthMethod {
  switch (method.type) {
    case "approle":
      return appRoleAuth({
        mountPath: method.mountPath,
        roleId: { file: method.config.roleIdFilePath },
        secretId: method.config.secretIdFilePath === undefined ? undefined : { file: method.config.secretIdFilePath },
        removeSecretIdFileAfterReading: method.config.removeSecretIdFileAfterReading,
      });
    case "kubernetes":
      return kubernetesAuth({ mountPath: method.mountPath, role: method.config.role, tokenPath: method.config.tokenPath });
    case "jwt":
      return jwtAuth({ mountPath: method.mountPath, role: method.config.role, jwt: { file: method.config.path }, removeJwtAfterReading: method.config.removeJwtAfterReading });
    case "cert":
      return certAuth({ mountPath: method.mountPath, name: method.config.name });
  }
}
