#include "ha/components.hpp"

namespace ha {

const std::vector<Component>& scalable_components() {
    static const std::vector<Component> all{
        {"apicast-production", "/apicast/productionSpec", "apicast", "production", true},
        {"apicast-staging", "/apicast/stagingSpec", "apicast", "staging", false},
        {"backend-listener", "/backend/listenerSpec", "backend", "listener", true},
        {"backend-worker", "/backend/workerSpec", "backend", "worker", true},
        {"system-app", "/system/appSpec", "system", "app", false},
        {"system-sidekiq", "/system/sidekiqSpec", "system", "sidekiq", false},
        {"zync", "/zync/appSpec", "zync", "zync", false},
        {"zync-que", "/zync/queSpec", "zync", "zync-que", false},
    };
    return all;
}

const Component& backend_cron() {
    static const Component cron{"backend-cron", "/backend/cronSpec", "backend", "cron", false};
    return cron;
}

}  // namespace ha
