#include "http/router.h"

#include <gtest/gtest.h>

namespace kura::http {
namespace {

TEST(RouterTest, MatchesStaticAndParameterisedRoutes) {
  Router router;
  RouteMatch m = router.Match(Method::kGet, "/v1/sys/health");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route, RouteId::kHealth);
  EXPECT_FALSE(m.traits.auth);
  EXPECT_EQ(m.param_count, 0);

  m = router.Match(Method::kGet, "/v1/t/acme/collections/customers/records/r-1_x");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route, RouteId::kGetRecord);
  EXPECT_EQ(m.pattern, "/v1/t/{t}/collections/{c}/records/{id}");
  ASSERT_EQ(m.param_count, 3);
  EXPECT_EQ(m.params[0], "acme");
  EXPECT_EQ(m.params[1], "customers");
  EXPECT_EQ(m.params[2], "r-1_x");
  EXPECT_TRUE(m.traits.auth);
  EXPECT_TRUE(m.traits.version);

  m = router.Match(Method::kPut, "/v1/t/acme/collections/customers/records/r1");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route, RouteId::kUpdateRecord);
  EXPECT_TRUE(m.traits.body);
  EXPECT_TRUE(m.traits.if_match);

  m = router.Match(Method::kGet, "/v1/t/acme/collections/customers/records");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route, RouteId::kFindRecords);
  EXPECT_TRUE(m.traits.filters);
  EXPECT_TRUE(m.traits.paging);
}

TEST(RouterTest, EveryMilestoneRouteIsReachable) {
  Router router;
  struct Case {
    Method method;
    const char* path;
    RouteId route;
  };
  const Case cases[] = {
      {Method::kGet, "/v1/sys/seal-status", RouteId::kSealStatus},
      {Method::kPost, "/v1/sys/init", RouteId::kInit},
      {Method::kPost, "/v1/sys/unseal", RouteId::kUnseal},
      {Method::kPost, "/v1/sys/seal", RouteId::kSeal},
      {Method::kGet, "/v1/whoami", RouteId::kWhoami},
      {Method::kPost, "/v1/tenants", RouteId::kCreateTenant},
      {Method::kGet, "/v1/tenants", RouteId::kListTenants},
      {Method::kGet, "/v1/tenants/acme", RouteId::kGetTenant},
      {Method::kDelete, "/v1/tenants/acme", RouteId::kDeleteTenant},
      {Method::kGet, "/v1/t/acme/collections", RouteId::kListCollections},
      {Method::kPut, "/v1/t/acme/collections/c", RouteId::kPutCollection},
      {Method::kGet, "/v1/t/acme/collections/c", RouteId::kGetCollection},
      {Method::kGet, "/v1/t/acme/roles", RouteId::kListRoles},
      {Method::kPut, "/v1/t/acme/roles/app", RouteId::kPutRole},
      {Method::kGet, "/v1/t/acme/roles/app", RouteId::kGetRole},
      {Method::kDelete, "/v1/t/acme/roles/app", RouteId::kDeleteRole},
      {Method::kPost, "/v1/t/acme/apikeys", RouteId::kCreateApiKey},
      {Method::kGet, "/v1/t/acme/apikeys", RouteId::kListApiKeys},
      {Method::kDelete, "/v1/t/acme/apikeys/k1", RouteId::kRevokeApiKey},
      {Method::kPost, "/v1/t/acme/collections/c/records", RouteId::kCreateRecord},
      {Method::kDelete, "/v1/t/acme/collections/c/records/r", RouteId::kDeleteRecord},
      {Method::kGet, "/v1/t/acme/collections/c/records/r/versions", RouteId::kListVersions},
  };
  for (const Case& c : cases) {
    RouteMatch m = router.Match(c.method, c.path);
    EXPECT_EQ(m.kind, RouteMatch::Kind::kFound) << c.path;
    EXPECT_EQ(m.route, c.route) << c.path;
  }
}

TEST(RouterTest, UnknownPathsAreNotFound) {
  Router router;
  for (const char* path :
       {"/", "", "v1/sys/health", "/v1", "/v1/sys/health/", "/v1/tenants/", "/v2/tenants", "/v1/t//collections",
        "/v1/t/acme/collections/c/records/r/versions/1", "/a/b/c/d/e/f/g/h/i/j/k", "/metrics"}) {
    EXPECT_EQ(router.Match(Method::kGet, path).kind, RouteMatch::Kind::kNotFound) << path;
  }
}

TEST(RouterTest, WrongMethodIsNotAllowedWithAllowList) {
  Router router;
  RouteMatch m = router.Match(Method::kPost, "/v1/t/acme/collections/c/records/r1");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, PUT, DELETE");

  m = router.Match(Method::kDelete, "/v1/sys/health");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, HEAD");

  // HEAD is a GET without the content only on the probes' routes.
  m = router.Match(Method::kHead, "/v1/sys/health");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route, RouteId::kHealth);
  m = router.Match(Method::kHead, "/v1/sys/seal-status");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route, RouteId::kSealStatus);
  m = router.Match(Method::kHead, "/v1/t/acme/collections/c/records/r1");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, PUT, DELETE");

  m = router.Match(Method::kOther, "/v1/tenants");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "POST, GET");
}

TEST(RouterTest, PathParametersMustBeUrlSafe) {
  Router router;
  for (const char* path : {"/v1/tenants/ac%20me", "/v1/tenants/acme.x", "/v1/tenants/%2e%2e", "/v1/tenants/a+b",
                           "/v1/t/acme/collections/c/records/r%2Fx"}) {
    EXPECT_EQ(router.Match(Method::kGet, path).kind, RouteMatch::Kind::kBadParameter) << path;
  }
  const std::string long_id(129, 'a');
  EXPECT_EQ(router.Match(Method::kGet, "/v1/tenants/" + long_id).kind, RouteMatch::Kind::kBadParameter);
  EXPECT_EQ(router.Match(Method::kGet, "/v1/tenants/" + std::string(128, 'a')).kind, RouteMatch::Kind::kFound);
}

TEST(RouterTest, IsUrlSafeId) {
  EXPECT_TRUE(IsUrlSafeId("abc-DEF_123"));
  EXPECT_FALSE(IsUrlSafeId(""));
  EXPECT_FALSE(IsUrlSafeId("a b"));
  EXPECT_FALSE(IsUrlSafeId("a/b"));
  EXPECT_FALSE(IsUrlSafeId("a%41"));
  EXPECT_FALSE(IsUrlSafeId(std::string_view("a\0b", 3)));
}

}  // namespace
}  // namespace kura::http
