package dev.ambient.ca.grpc;

import dev.ambient.auth.CredentialsInterceptor;
import jakarta.enterprise.context.ApplicationScoped;

/** Hands the caller's {@code authorization} metadata and address to the service (the shared interceptor, as a bean). */
@ApplicationScoped
public class CallerMetadataInterceptor extends CredentialsInterceptor {
}
