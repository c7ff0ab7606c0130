//! The OpenAPI document, generated from the handlers' annotations. A test compares it with the
//! route table, so a route without documentation fails the build's tests.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin_routes, auth_routes, error, mail_routes, ops_routes, recovery_routes};

#[derive(OpenApi)]
#[openapi(
    info(title = "IMS", description = "Production management for electronics factories."),
    paths(
        ops_routes::healthz, ops_routes::readyz, ops_routes::metrics, ops_routes::openapi,
        ops_routes::docs_page, ops_routes::docs_script,
        auth_routes::login, auth_routes::refresh, auth_routes::logout, auth_routes::me,
        auth_routes::jwks,
        admin_routes::list_users, admin_routes::create_user, admin_routes::get_user,
        admin_routes::update_user, admin_routes::revoke_sessions, admin_routes::unlock,
        admin_routes::list_audit,
        recovery_routes::forgot_password, recovery_routes::send_verification,
        recovery_routes::verify_otp, recovery_routes::reset_password,
        recovery_routes::change_password,
        mail_routes::list_failed, mail_routes::retry,
    ),
    components(schemas(error::Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign-in, tokens and sessions"),
        (name = "admin", description = "Users and audit (ADMIN)"),
        (name = "ops", description = "Health, metrics and documentation"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
