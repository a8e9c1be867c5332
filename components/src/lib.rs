//! Components on real backends, with Dapr's metadata names: `state.redis`,
//! `state.postgresql`, `lock.redis`, `pubsub.redis`, `pubsub.rabbitmq`, `configuration.redis`,
//! `configuration.postgresql`, `bindings.redis`, `bindings.postgresql`, `bindings.rabbitmq`,
//! and (feature `kafka`) `pubsub.kafka` and `bindings.kafka`. They know nothing of the harness; the registry builds them from
//! Component YAML like any other component.

#[cfg(feature = "kafka")]
pub mod bindings_kafka;
pub mod bindings_postgres;
pub mod bindings_rabbitmq;
pub mod bindings_redis;
pub mod configuration_postgres;
pub mod configuration_redis;
pub mod lock_redis;
mod postgres_common;
#[cfg(feature = "kafka")]
pub mod pubsub_kafka;
pub mod pubsub_rabbitmq;
pub mod pubsub_redis;
pub mod state_postgres;
pub mod state_redis;

use std::sync::Arc;

use contract::{Component, ComponentContext, Registry};

/// Registers the real-backend components.
pub fn register(registry: &mut Registry) {
    registry.register("state.redis", |ctx: ComponentContext| async move {
        let settings = state_redis::RedisSettings::from_properties(&ctx.properties)?;
        let store = state_redis::RedisStateStore::connect(&settings).await?;
        Ok(Component::state(Arc::new(store)))
    });
    registry.register("lock.redis", |ctx: ComponentContext| async move {
        let settings = state_redis::RedisSettings::from_properties(&ctx.properties)?;
        Ok(Component::lock(Arc::new(lock_redis::RedisLockStore::connect(&settings).await?)))
    });
    registry.register("pubsub.redis", |ctx: ComponentContext| async move {
        let settings = pubsub_redis::RedisPubSubSettings::from_properties(&ctx.properties)?;
        Ok(Component::pubsub(Arc::new(pubsub_redis::RedisPubSub::connect(settings).await?)))
    });
    #[cfg(feature = "kafka")]
    registry.register("pubsub.kafka", |ctx: ComponentContext| async move {
        let settings = pubsub_kafka::KafkaSettings::from_properties(&ctx.properties)?;
        Ok(Component::pubsub(Arc::new(pubsub_kafka::KafkaPubSub::connect(settings).await?)))
    });
    registry.register("pubsub.rabbitmq", |ctx: ComponentContext| async move {
        let settings = pubsub_rabbitmq::RabbitSettings::from_properties(&ctx.properties)?;
        Ok(Component::pubsub(Arc::new(pubsub_rabbitmq::RabbitPubSub::connect(settings).await?)))
    });
    registry.register("bindings.redis", |ctx: ComponentContext| async move {
        let settings = state_redis::RedisSettings::from_properties(&ctx.properties)?;
        let binding = Arc::new(bindings_redis::RedisBinding::connect(&settings).await?);
        Ok(Component::binding(None, Some(binding)))
    });
    registry.register("bindings.rabbitmq", |ctx: ComponentContext| async move {
        let settings = bindings_rabbitmq::RabbitBindingSettings::from_properties(&ctx.properties)?;
        let binding = Arc::new(bindings_rabbitmq::RabbitBinding::connect(settings).await?);
        Ok(Component::binding(Some(binding.clone()), Some(binding)))
    });
    #[cfg(feature = "kafka")]
    registry.register("bindings.kafka", |ctx: ComponentContext| async move {
        let settings = bindings_kafka::KafkaBindingSettings::from_properties(&ctx.properties)?;
        let binding = Arc::new(bindings_kafka::KafkaBinding::connect(settings).await?);
        let input: Option<Arc<dyn contract::InputBinding>> = binding.reads().then(|| binding.clone() as _);
        Ok(Component::binding(input, Some(binding)))
    });
    registry.register("bindings.postgresql", |ctx: ComponentContext| async move {
        let binding = Arc::new(bindings_postgres::PostgresBinding::connect(&ctx.properties).await?);
        Ok(Component::binding(None, Some(binding)))
    });
    registry.register("configuration.redis", |ctx: ComponentContext| async move {
        let settings = state_redis::RedisSettings::from_properties(&ctx.properties)?;
        let store = Arc::new(configuration_redis::RedisConfigurationStore::connect(&settings).await?);
        Ok(Component::configuration(store.clone(), Some(store)))
    });
    registry.register("configuration.postgresql", |ctx: ComponentContext| async move {
        let settings = configuration_postgres::PostgresConfigSettings::from_properties(&ctx.properties)?;
        let store = Arc::new(configuration_postgres::PostgresConfigurationStore::connect(settings).await?);
        Ok(Component::configuration(store.clone(), Some(store)))
    });
    registry.register("state.postgresql", |ctx: ComponentContext| async move {
        let settings = state_postgres::PostgresSettings::from_properties(&ctx.properties)?;
        let store = state_postgres::PostgresStateStore::connect(settings).await?;
        Ok(Component::state(Arc::new(store)))
    });
}
