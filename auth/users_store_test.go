package auth

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionhub/sessionhub/internal/testenv"
)

// TestCreateUserWithIdentity: a Google first login stores the account and
// its identity together; when either is taken, neither is written, so no
// account is ever left without the identity it was made for.
func TestCreateUserWithIdentity(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(t *testing.T) UserStore{
		"postgres": func(t *testing.T) UserStore { return NewPostgresUsers(testenv.Postgres(t)) },
		"memory":   func(t *testing.T) UserStore { return NewMemoryUsers() },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := mk(t)
			now := time.Now().UTC().Truncate(time.Microsecond)
			user := func(email string) *User {
				return &User{ID: newUserID(), Email: email, EmailVerified: true, Scopes: []string{}, CreatedAt: now, UpdatedAt: now}
			}
			ident := func(sub, uid string) *Identity {
				return &Identity{Provider: "google", Subject: sub, UserID: uid, Email: "x@gmail.com", EmailVerified: true, CreatedAt: now}
			}

			a := user("a@gmail.com")
			require.NoError(t, st.CreateUserWithIdentity(ctx, a, ident("sub-a", a.ID)))
			got, err := st.IdentityBySubject(ctx, "google", "sub-a")
			require.NoError(t, err)
			require.Equal(t, a.ID, got.UserID)

			// The identity is taken: the second account is not created.
			b := user("b@gmail.com")
			require.ErrorIs(t, st.CreateUserWithIdentity(ctx, b, ident("sub-a", b.ID)), ErrIdentityTaken)
			_, err = st.UserByEmail(ctx, "b@gmail.com")
			require.ErrorIs(t, err, ErrUserNotFound, "no account without its identity")

			// The email is taken: the identity is not recorded.
			c := user("A@gmail.com")
			require.ErrorIs(t, st.CreateUserWithIdentity(ctx, c, ident("sub-c", c.ID)), ErrEmailTaken)
			_, err = st.IdentityBySubject(ctx, "google", "sub-c")
			require.Error(t, err)
		})
	}
}
