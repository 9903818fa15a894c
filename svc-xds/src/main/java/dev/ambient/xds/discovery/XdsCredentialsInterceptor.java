package dev.ambient.xds.discovery;

import dev.ambient.auth.CredentialsInterceptor;
import jakarta.enterprise.context.ApplicationScoped;

/** Hands a stream's {@code authorization} metadata and address to the service (the shared interceptor, as a bean). */
@ApplicationScoped
public class XdsCredentialsInterceptor extends CredentialsInterceptor {
}
