#pragma once

#include <vector>

namespace ha {

// A 3scale Deployment the operator scales, where its settings live in the APIManager spec and
// the labels its pods carry (every version).
struct Component {
    const char* deployment;  // apicast-production
    const char* spec_path;   // JSON pointer under spec: /apicast/productionSpec
    const char* family;      // threescale_component: apicast
    const char* element;     // threescale_component_element: production
    bool hpa_capable;        // `hpa: true` exists (2.15+)
};

// The eight components 3scale's HA rules require at least two replicas of (backend-cron is
// scalable too, but a second one adds nothing and render leaves it at the HA example's 2).
const std::vector<Component>& scalable_components();

// backend-cron, for render and the standby patch.
const Component& backend_cron();

}  // namespace ha
