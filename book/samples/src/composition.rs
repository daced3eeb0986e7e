//! API composition, retold from the guide: the order service answers a query that needs data
//! owned by three other services by calling them and joining the results in memory.
//!
//! The pattern's cost is availability: the answer needs every service it calls, so each extra
//! call is one more way to fail. The sample makes that trade explicit: user and product are
//! required, while payment details are optional and degrade to "unknown" instead of failing the
//! whole page.

use std::future::Future;

use serde::Serialize;

/// A failure of one call made by the composer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}: {reason}")]
pub struct ServiceError {
    /// The service that failed.
    pub service: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// A row of the order service's own database.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    /// Order id.
    pub id: String,
    /// Order status (`placed`, `shipped` …).
    pub status: String,
    /// Customer id, owned by the user service.
    pub user_id: String,
    /// Product id, owned by the product service.
    pub product_id: String,
}

/// The user as the user service returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: String,
}

/// The product as the product service returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRecord {
    /// Product name.
    pub name: String,
    /// Price in cents.
    pub price: u64,
}

/// The payment as the payment service returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRecord {
    /// Payment status (`captured`, `refunded` …).
    pub status: String,
    /// Payment method (`card`, `paypal` …).
    pub method: String,
}

// ANCHOR: sources
/// Everything the composer reads: its own database and three other services' APIs.
pub trait OrderDetailSources {
    /// `orderDB.findById(orderId)`: the order service's own data.
    fn order(&self, id: &str) -> impl Future<Output = Result<OrderRow, ServiceError>> + Send;
    /// `GET http://user-service/users/{id}`
    fn user(&self, id: &str) -> impl Future<Output = Result<UserRecord, ServiceError>> + Send;
    /// `GET http://product-service/products/{id}`
    fn product(&self, id: &str)
    -> impl Future<Output = Result<ProductRecord, ServiceError>> + Send;
    /// `GET http://payment-service/payments/{order_id}`
    fn payment(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<PaymentRecord, ServiceError>> + Send;
}
// ANCHOR_END: sources

// ANCHOR: compose
/// The composed response: only the fields the client needs from each service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderView {
    /// Order id.
    pub id: String,
    /// Order status.
    pub status: String,
    /// `{ name, email }` from the user service.
    pub user: UserSummary,
    /// `{ name, price }` from the product service.
    pub product: ProductSummary,
    /// `{ status, method }` from the payment service, or `unknown` while it is unavailable.
    pub payment: PaymentSummary,
}

/// The user fields of the view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserSummary {
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: String,
}

/// The product fields of the view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductSummary {
    /// Product name.
    pub name: String,
    /// Price in cents.
    pub price: u64,
}

/// The payment fields of the view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentSummary {
    /// Payment status, `unknown` when the payment service did not answer.
    pub status: String,
    /// Payment method, `unknown` when the payment service did not answer.
    pub method: String,
}

/// Reads the order first (the other calls need its ids), then the three services in parallel.
pub async fn get_order_details(
    sources: &impl OrderDetailSources,
    order_id: &str,
) -> Result<OrderView, ServiceError> {
    let order = sources.order(order_id).await?;
    let (user, product, payment) = tokio::join!(
        sources.user(&order.user_id),
        sources.product(&order.product_id),
        sources.payment(&order.id),
    );
    let (user, product) = (user?, product?);
    // Payment details are nice to have: show the order even when that service is down.
    let payment = payment.map_or_else(
        |_| PaymentSummary {
            status: "unknown".into(),
            method: "unknown".into(),
        },
        |p| PaymentSummary {
            status: p.status,
            method: p.method,
        },
    );
    Ok(OrderView {
        id: order.id,
        status: order.status,
        user: UserSummary {
            name: user.name,
            email: user.email,
        },
        product: ProductSummary {
            name: product.name,
            price: product.price,
        },
        payment,
    })
}
// ANCHOR_END: compose

#[cfg(test)]
mod tests {
    use super::*;

    struct Sources {
        payment_up: bool,
        user_up: bool,
    }

    impl OrderDetailSources for Sources {
        async fn order(&self, id: &str) -> Result<OrderRow, ServiceError> {
            Ok(OrderRow {
                id: id.into(),
                status: "placed".into(),
                user_id: "456".into(),
                product_id: "ABC".into(),
            })
        }
        async fn user(&self, id: &str) -> Result<UserRecord, ServiceError> {
            if !self.user_up {
                return Err(ServiceError {
                    service: "user-service",
                    reason: "timeout".into(),
                });
            }
            assert_eq!(id, "456", "user id comes from the order row");
            Ok(UserRecord {
                name: "Alice".into(),
                email: "alice@example.com".into(),
            })
        }
        async fn product(&self, id: &str) -> Result<ProductRecord, ServiceError> {
            assert_eq!(id, "ABC", "product id comes from the order row");
            Ok(ProductRecord {
                name: "Keyboard".into(),
                price: 5_000,
            })
        }
        async fn payment(&self, _order_id: &str) -> Result<PaymentRecord, ServiceError> {
            if !self.payment_up {
                return Err(ServiceError {
                    service: "payment-service",
                    reason: "connection refused".into(),
                });
            }
            Ok(PaymentRecord {
                status: "captured".into(),
                method: "card".into(),
            })
        }
    }

    #[tokio::test]
    async fn composes_fields_from_four_sources() {
        let view = get_order_details(
            &Sources {
                payment_up: true,
                user_up: true,
            },
            "123",
        )
        .await
        .expect("all up");
        let json = serde_json::to_value(&view).expect("serializable");
        assert_eq!(
            json,
            serde_json::json!({
                "id": "123", "status": "placed",
                "user": { "name": "Alice", "email": "alice@example.com" },
                "product": { "name": "Keyboard", "price": 5000 },
                "payment": { "status": "captured", "method": "card" }
            })
        );
    }

    #[tokio::test]
    async fn optional_source_degrades_required_source_fails() {
        let view = get_order_details(
            &Sources {
                payment_up: false,
                user_up: true,
            },
            "123",
        )
        .await
        .expect("payment is optional");
        assert_eq!(view.payment.status, "unknown");

        let error = get_order_details(
            &Sources {
                payment_up: true,
                user_up: false,
            },
            "123",
        )
        .await
        .expect_err("user is required");
        assert_eq!(error.service, "user-service");
    }
}
