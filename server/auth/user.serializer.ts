import type { AuthUser } from './auth.service';

export const serializeUser = (user: AuthUser) => ({
  id: user.id,
  username: user.username,
  first_name: user.firstName,
  last_name: user.lastName,
});

export const serializeMe = (user: AuthUser) => ({
  ...serializeUser(user),
  profile_image: user.profileImage,
  is_admin: user.isAdmin,
});
